//! `TokenScope`: the scopes an elevated access token can carry.

use crate::open_enum::open_enum;

open_enum! {
    /// A scope of an elevated access token, as Dynamic names it on the wire (`credential:link`, ...).
    ///
    /// Parsing never fails: a scope this version does not know is kept verbatim in [`TokenScope::Unknown`], so a
    /// newer server's scopes round-trip through an older client. Equality, order and hash use the wire form.
    pub enum TokenScope, expecting "a token scope string" {
        /// Link a new credential (email, phone, wallet, MFA device) to the user.
        CredentialLink => "credential:link",
        /// Change an existing credential.
        CredentialUpdate => "credential:update",
        /// Remove a credential from the user.
        CredentialUnlink => "credential:unlink",
        /// Change the user's profile.
        UserUpdate => "user:update",
        /// Delete the user's account.
        UserDelete => "user:delete",
        /// Export a wallet's private key.
        WalletExport => "wallet:export",
        /// Delete a wallet.
        WalletDelete => "wallet:delete",
        /// Delegate a wallet.
        WalletDelegate => "wallet:delegate",
        /// Sign with a wallet.
        WalletSign => "wallet:sign",
        /// Restore a wallet.
        WalletRestore => "wallet:restore",
        /// Link a wallet to a business account.
        BusinessAccountLinkWallet => "business_account:link_wallet",
        /// Add a member to a business account.
        BusinessAccountMemberAdd => "business_account:member:add",
        /// Remove a member from a business account.
        BusinessAccountMemberRemove => "business_account:member:remove",
        /// Change a business account member's role.
        BusinessAccountMemberRoleUpdate => "business_account:member:role:update",
        /// Add a signer to a business account.
        BusinessAccountSignerAdd => "business_account:signer:add",
        /// Remove a signer from a business account.
        BusinessAccountSignerRemove => "business_account:signer:remove",
        /// Transfer a business account's ownership.
        BusinessAccountTransferOwnership => "business_account:transfer_ownership",
        /// Remove a wallet from a business account.
        BusinessAccountWalletRemove => "business_account:wallet:remove",
        /// Review an admin action in the console.
        ConsoleAdminActionReview => "console:admin_action:review",
        /// Change an approval workflow in the console.
        ConsoleApprovalWorkflowUpdate => "console:approval_workflow:update",
        /// Invite a console member.
        ConsoleMemberInvite => "console:member:invite",
        /// Reset a user's MFA from the console.
        ConsoleMfaReset => "console:mfa:reset",
        /// Delete a project from the console.
        ConsoleProjectDelete => "console:project:delete",
        /// Change settings in the console.
        ConsoleSettingsUpdate => "console:settings:update",
        /// Change SSO settings in the console.
        ConsoleSsoUpdate => "console:sso:update",
        /// Delete a user from the console.
        ConsoleUserDelete => "console:user:delete",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_26_known_scopes_round_trip_through_their_wire_form() {
        assert_eq!(TokenScope::KNOWN.len(), 26);
        for scope in TokenScope::KNOWN {
            assert!(scope.is_known());
            assert_eq!(&TokenScope::parse(scope.as_str()), scope);
            let json = serde_json::to_string(scope).unwrap();
            assert_eq!(json, format!("\"{}\"", scope.as_str()));
            assert_eq!(&serde_json::from_str::<TokenScope>(&json).unwrap(), scope);
        }
    }

    #[test]
    fn known_index_is_the_position_in_known() {
        for (i, scope) in TokenScope::KNOWN.iter().enumerate() {
            assert_eq!(scope.known_index(), Some(i));
        }
        assert_eq!(TokenScope::Unknown("x:y".into()).known_index(), None);
        assert_eq!(
            TokenScope::Unknown("wallet:export".into()).known_index(),
            None,
            "hand-built unknowns stay unknown"
        );
    }

    #[test]
    fn unknown_scope_is_kept_verbatim() {
        let scope: TokenScope = serde_json::from_str("\"wallet:teleport\"").unwrap();
        assert_eq!(scope, TokenScope::Unknown("wallet:teleport".to_owned()));
        assert!(!scope.is_known());
        assert_eq!(serde_json::to_string(&scope).unwrap(), "\"wallet:teleport\"");
    }

    #[test]
    fn non_string_scope_is_a_type_error() {
        assert!(serde_json::from_str::<TokenScope>("42").is_err());
    }

    #[test]
    fn hand_built_unknown_equals_the_known_variant() {
        assert_eq!(TokenScope::Unknown("wallet:export".into()), TokenScope::WalletExport);
    }

    #[test]
    fn order_is_by_wire_form() {
        let mut scopes =
            vec![TokenScope::WalletExport, TokenScope::Unknown("a:b".into()), TokenScope::UserDelete];
        scopes.sort();
        assert_eq!(
            scopes,
            vec![TokenScope::Unknown("a:b".into()), TokenScope::UserDelete, TokenScope::WalletExport]
        );
    }
}

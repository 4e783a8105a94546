//! Chain names: Dynamic spells one chain two ways.
//!
//! A wallet *connector* (and the `chain` field of `POST /wallets/verify`) names the chain family as the SDK does:
//! `EVM`, `SOL`, `BTC`... A *verified credential* (`SdkUser.verifiedCredentials[].chain`) names it as Dynamic's
//! credential chain: `eip155`, `solana`, `bip122`... Dynamic's JS client looks the credential name up in its
//! chain table and silently skips a wallet credential whose name it does not know, so a server that answers
//! `EVM` there hides every wallet from it. The table below is Dynamic's (`CHAINS_INFO_MAP` of
//! `@dynamic-labs-sdk/client` 1.27.1).

/// `(connector chain, credential chain)` for every chain Dynamic's client knows.
pub const CHAIN_NAMES: &[(&str, &str)] = &[
    ("EVM", "eip155"),
    ("SOL", "solana"),
    ("BTC", "bip122"),
    ("FLOW", "flow"),
    ("ALGO", "algorand"),
    ("STARK", "starknet"),
    ("COSMOS", "cosmos"),
    ("ECLIPSE", "eclipse"),
    ("SUI", "sui"),
    ("SPARK", "spark"),
    ("TRON", "tron"),
    ("APTOS", "aptos"),
    ("TON", "ton"),
    ("STELLAR", "stellar"),
    ("ALEO", "aleo"),
    ("TEMPO", "tempo"),
    ("MIDNIGHT", "midnight"),
];

/// The credential chain name (`eip155`) of a chain given in either spelling (`EVM`, `eip155`, or `ETH`, which
/// Dynamic's API also accepts for EVM); `None` for a chain Dynamic does not know.
#[must_use]
pub fn credential_chain(name: &str) -> Option<&'static str> {
    if name.eq_ignore_ascii_case("ETH") {
        return Some("eip155");
    }
    CHAIN_NAMES
        .iter()
        .find(|(connector, credential)| {
            connector.eq_ignore_ascii_case(name) || credential.eq_ignore_ascii_case(name)
        })
        .map(|(_, credential)| *credential)
}

/// The connector chain name (`EVM`) of a chain given in either spelling; `None` for a chain Dynamic does not
/// know.
#[must_use]
pub fn connector_chain(name: &str) -> Option<&'static str> {
    let credential = credential_chain(name)?;
    CHAIN_NAMES.iter().find(|(_, c)| *c == credential).map(|(connector, _)| *connector)
}

/// Whether two chain names, in either spelling, name the same chain (`EVM` and `eip155` do). Names Dynamic does
/// not know are the same only when they are equal, ignoring case.
#[must_use]
pub fn same_chain(a: &str, b: &str) -> bool {
    match (credential_chain(a), credential_chain(b)) {
        (Some(a), Some(b)) => a == b,
        _ => a.eq_ignore_ascii_case(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_name_one_chain() {
        assert_eq!(credential_chain("EVM"), Some("eip155"));
        assert_eq!(credential_chain("eip155"), Some("eip155"));
        assert_eq!(credential_chain("evm"), Some("eip155"));
        assert_eq!(credential_chain("ETH"), Some("eip155"));
        assert_eq!(credential_chain("SOL"), Some("solana"));
        assert_eq!(credential_chain("dogecoin"), None);
        assert_eq!(connector_chain("eip155"), Some("EVM"));
        assert_eq!(connector_chain("bip122"), Some("BTC"));
        assert_eq!(connector_chain("EVM"), Some("EVM"));
        assert!(same_chain("EVM", "eip155"));
        assert!(same_chain("eip155", "ETH"));
        assert!(!same_chain("EVM", "solana"));
        assert!(same_chain("dogecoin", "DOGECOIN"));
        assert!(!same_chain("dogecoin", "EVM"));
    }

    #[test]
    fn every_chain_is_listed_once_each_way() {
        for (connector, credential) in CHAIN_NAMES {
            assert_eq!(credential_chain(connector), Some(*credential));
            assert_eq!(connector_chain(credential), Some(*connector));
        }
    }
}

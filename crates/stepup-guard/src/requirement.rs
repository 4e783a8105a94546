//! What a call requires of a token: a scope, and the user and session the backend knows, when it knows them.

use stepup_proto::TokenScope;

/// What a protected call requires: the scope its token must grant and, when the backend knows who is calling,
/// the user (`sub`) and session (`sid`) the token must have been issued to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    scope: TokenScope,
    subject: Option<String>,
    session_id: Option<String>,
}

impl Requirement {
    /// A token granting `scope`, issued to anyone.
    #[must_use]
    pub fn scope(scope: TokenScope) -> Self {
        Self { scope, subject: None, session_id: None }
    }

    /// Also bound to this user: the token's `sub` must be `subject` (tokens are not transferable).
    #[must_use]
    pub fn for_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Also bound to this session: the token's `sid` must be `session_id`, so a token earned in another session
    /// (or one since revoked) opens nothing here. A token without `sid` is refused.
    #[must_use]
    pub fn for_session(mut self, session_id: impl Into<String>) -> Self {
        self.session_id = Some(session_id.into());
        self
    }

    /// Binds the call to what a [`SessionBinding`] says.
    #[must_use]
    pub fn bound_to(mut self, binding: &SessionBinding) -> Self {
        self.subject = binding.subject.clone().or(self.subject);
        self.session_id = binding.session_id.clone().or(self.session_id);
        self
    }

    /// The required scope.
    #[must_use]
    pub fn required_scope(&self) -> &TokenScope {
        &self.scope
    }

    /// The user the token must belong to, if bound.
    #[must_use]
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// The session the token must belong to, if bound.
    #[must_use]
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }
}

/// Who is calling, as the backend's own authentication found it: put it in the request's extensions before the
/// guard runs (`request.extensions_mut().insert(SessionBinding::new(...))`) and the tower layer and the axum
/// extractors bind the token to it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionBinding {
    /// The user's id, as the issuer's `sub`.
    pub subject: Option<String>,
    /// The session's id, as the issuer's `sid`.
    pub session_id: Option<String>,
}

impl SessionBinding {
    /// The user `subject` in session `session_id`.
    #[must_use]
    pub fn new(subject: impl Into<String>, session_id: impl Into<String>) -> Self {
        Self { subject: Some(subject.into()), session_id: Some(session_id.into()) }
    }

    /// The user `subject`, session unknown.
    #[must_use]
    pub fn subject(subject: impl Into<String>) -> Self {
        Self { subject: Some(subject.into()), session_id: None }
    }
}

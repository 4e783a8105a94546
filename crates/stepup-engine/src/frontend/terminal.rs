//! `TerminalFrontend`: the built-in UI for kiosks and CLIs (feature `terminal`).
//!
//! Each request becomes a small dialog drawn inline below whatever the program printed before (no colours
//! needed), so it works in a plain terminal, over SSH and in a pseudo-terminal under test. Keys: arrows (or
//! `j`/`k`, or a digit) and Enter to choose a method (the server's suggestion is highlighted first); typed codes
//! show as `*`; Ctrl-R sends a one-time code again; Esc or Ctrl-C cancels the flow.
//!
//! Secrets the person must read or scan at leisure — a new authenticator app's QR code and key, new recovery
//! codes — are shown on the terminal's alternate screen, above the dialog, and are gone (not in the scrollback)
//! once it is answered: a kiosk's screen is shared. Only the dialog's one-line summary stays. Nothing is shown
//! when stdin or stdout is not a terminal (a pipe, a log file): the prompt is cancelled instead.
//!
//! The dialog logic ([`Dialog`]) is pure: keys in, lines and an answer out. Only [`TerminalFrontend::prompt`]
//! touches the terminal, on a blocking thread, in raw mode that is always restored.

use std::io::{self, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::{cursor, queue, terminal};
use stepup_core::{Credential, SecretString, StepUpError};
use zeroize::Zeroizing;

use crate::frontend::{Frontend, PromptReply, PromptRequest};

/// The longest code accepted from the keyboard (recovery codes are the longest, well under this).
const MAX_CODE_LEN: usize = 64;

/// How often the key loop looks up from the keyboard to see whether the engine gave up on the prompt.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The built-in terminal UI (docs/design.md §6). One dialog at a time, even when several engines share it.
///
/// It prints nothing when a flow ends: the app hears the outcome from its own `prompt_*` call and says what fits
/// (a line from a task the engine spawns would race with the app's own output).
#[derive(Debug)]
pub struct TerminalFrontend {
    glyphs: &'static Glyphs,
    /// Serialises terminal use between engines that share this front end. The key loop's thread holds it until
    /// it has left raw mode, which can be after the prompt's future was dropped.
    lock: Arc<tokio::sync::Mutex<()>>,
    /// The last failed try's line, until the next dialog: printed on the main screen at once, and repeated on the
    /// alternate screen when the next dialog is shown there (where the main screen is hidden).
    failure: std::sync::Mutex<Option<String>>,
    /// Whether stdin and stdout are a terminal (a seam for the tests, which run under a pipe or a terminal).
    has_terminal: fn() -> bool,
}

/// Whether this process's stdin and stdout are both a terminal.
fn stdio_is_terminal() -> bool {
    io::stdin().is_terminal() && io::stdout().is_terminal()
}

impl Default for TerminalFrontend {
    fn default() -> Self {
        Self::with_glyphs(Glyphs::detect())
    }
}

impl TerminalFrontend {
    /// A terminal front end on this process's stdin/stdout. It draws with a few Unicode symbols (`❯`, `✖`), or
    /// with ASCII only when the terminal says it cannot show them (`TERM=dumb`, or a locale that is not UTF-8).
    #[must_use]
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A terminal front end that draws with ASCII only, whatever the locale says.
    #[must_use]
    pub fn ascii() -> Arc<Self> {
        Arc::new(Self::with_glyphs(&Glyphs::ASCII))
    }

    fn with_glyphs(glyphs: &'static Glyphs) -> Self {
        Self {
            glyphs,
            lock: Arc::default(),
            failure: std::sync::Mutex::default(),
            has_terminal: stdio_is_terminal,
        }
    }
}

/// The symbols the dialogs draw with.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Glyphs {
    pointer: &'static str,
    arrows: &'static str,
    dot: &'static str,
    caret: &'static str,
    cross: &'static str,
    check: &'static str,
    open_quote: &'static str,
    close_quote: &'static str,
    dash: &'static str,
}

impl Glyphs {
    pub(crate) const UNICODE: Glyphs = Glyphs {
        pointer: "❯",
        arrows: "↑/↓",
        dot: "·",
        caret: "›",
        cross: "✖",
        check: "✓",
        open_quote: "“",
        close_quote: "”",
        dash: "—",
    };
    pub(crate) const ASCII: Glyphs = Glyphs {
        pointer: ">",
        arrows: "Up/Down",
        dot: "|",
        caret: ">",
        cross: "x",
        check: "ok",
        open_quote: "\"",
        close_quote: "\"",
        dash: "-",
    };

    /// Unicode unless the environment says the terminal cannot show it.
    fn detect() -> &'static Glyphs {
        let var = |name| std::env::var(name).ok().filter(|value: &String| !value.is_empty());
        // The first locale variable set decides, as in POSIX (LC_ALL over LC_CTYPE over LANG).
        let locale = var("LC_ALL").or_else(|| var("LC_CTYPE")).or_else(|| var("LANG"));
        let utf8 = locale.is_none_or(|locale| {
            let locale = locale.to_ascii_lowercase();
            locale.contains("utf-8") || locale.contains("utf8")
        });
        if var("TERM").as_deref() == Some("dumb") || !utf8 { &Glyphs::ASCII } else { &Glyphs::UNICODE }
    }
}

impl TerminalFrontend {
    /// As [`Frontend::prompt`], with `notes` — lines from the app, such as a hint — shown just above the dialog
    /// (on the alternate screen with the secrets when the request shows any, so they are seen together).
    pub async fn prompt_with_notes(&self, request: PromptRequest, notes: Vec<String>) -> PromptReply {
        let terminal = self.lock.clone().lock_owned().await;
        if let PromptRequest::Failed { error, attempts_left } = &request {
            // A notice, not a question: print it and go on to the next try at once.
            let line = failure_line(error, *attempts_left, self.glyphs);
            write_lines(std::slice::from_ref(&line));
            *self.failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(line);
            return PromptReply::Confirm;
        }
        let failure = self.failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        let Some(dialog) = Dialog::for_request(&request) else {
            return PromptReply::Cancel;
        };
        // Checked before anything is printed: a QR code's secret or recovery codes piped into a log would outlive
        // the prompt, and nobody could answer it anyway.
        if !(self.has_terminal)() {
            tracing::warn!("the terminal front end has no terminal (stdin or stdout is redirected)");
            return PromptReply::Cancel;
        }
        let secrets = Zeroizing::new(preamble(&request));
        let aside = if secrets.is_empty() {
            write_lines(&notes);
            None
        } else {
            let mut lines = secrets;
            lines.extend(notes);
            lines.extend(failure);
            Some(lines)
        };
        // Dropping this future (cancel, reset, prompt timeout) raises the flag; the key loop sees it within one
        // poll interval, restores the terminal and ends.
        let abandoned = Arc::new(AtomicBool::new(false));
        let guard = RaiseOnDrop(abandoned.clone());
        let glyphs = self.glyphs;
        let reply = tokio::task::spawn_blocking(move || {
            let reply = run_dialog(dialog, aside.as_deref().map(Vec::as_slice), glyphs, &abandoned);
            drop(terminal);
            reply
        })
        .await;
        drop(guard);
        match reply {
            Ok(Ok(reply)) => reply,
            // No terminal to talk to (stdin is not a TTY...) or the thread failed: nobody can answer.
            Ok(Err(error)) => {
                tracing::warn!(%error, "the terminal front end cannot read the keyboard");
                PromptReply::Cancel
            }
            Err(_) => PromptReply::Cancel,
        }
    }
}

#[async_trait::async_trait]
impl Frontend for TerminalFrontend {
    async fn prompt(&self, request: PromptRequest) -> PromptReply {
        self.prompt_with_notes(request, Vec::new()).await
    }
}

/// Sets the flag when dropped.
struct RaiseOnDrop(Arc<AtomicBool>);

impl Drop for RaiseOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Leaves raw mode when dropped, however the dialog ended.
struct RawMode;

impl RawMode {
    fn enter() -> io::Result<Self> {
        terminal::enable_raw_mode()?;
        Ok(Self)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = terminal::disable_raw_mode();
    }
}

/// The alternate screen, left when dropped, however the dialog ended.
struct AlternateScreen;

impl AlternateScreen {
    fn enter(out: &mut impl Write) -> io::Result<Self> {
        queue!(out, terminal::EnterAlternateScreen, cursor::MoveTo(0, 0))?;
        out.flush()?;
        Ok(Self)
    }
}

impl Drop for AlternateScreen {
    fn drop(&mut self) {
        let mut out = io::stdout();
        let _ = queue!(out, terminal::LeaveAlternateScreen);
        let _ = out.flush();
    }
}

/// Runs one dialog on the terminal until it has an answer or the engine gives up on it; `aside`, when given, is
/// shown above it on the alternate screen (secrets that must not stay on the screen).
fn run_dialog(
    mut dialog: Dialog,
    aside: Option<&[String]>,
    glyphs: &Glyphs,
    abandoned: &AtomicBool,
) -> io::Result<PromptReply> {
    let raw = RawMode::enter()?;
    let mut out = io::stdout();
    let screen = match aside {
        Some(lines) => {
            let screen = AlternateScreen::enter(&mut out)?;
            for line in lines {
                write!(out, "{line}\r\n")?;
            }
            Some(screen)
        }
        None => None,
    };
    // Keys typed before this dialog was shown (while a code was being checked, say) were meant for something
    // else: a stray `1` and Enter must not pick a method.
    while event::poll(Duration::ZERO)? {
        let _ = event::read()?;
    }
    let mut drawn = draw(&mut out, &dialog.lines(glyphs), 0)?;
    let reply = loop {
        if abandoned.load(Ordering::Relaxed) {
            break PromptReply::Cancel;
        }
        if !event::poll(POLL_INTERVAL)? {
            continue;
        }
        let Event::Key(key) = event::read()? else { continue };
        if let Some(reply) = dialog.on_key(key) {
            break reply;
        }
        drawn = draw(&mut out, &dialog.lines(glyphs), drawn)?;
    };
    if let Some(screen) = screen {
        // Back on the main screen, where the dialog never was: the summary goes below what was there.
        drop(screen);
        drawn = 0;
    }
    // Replace the dialog by its one-line summary, so the scrollback reads as a transcript.
    draw(&mut out, &[dialog.summary(&reply, glyphs)], drawn)?;
    drop(raw);
    Ok(reply)
}

/// Draws `lines` over the `previous` screen rows drawn last time; returns how many rows it drew.
fn draw(out: &mut impl Write, lines: &[String], previous: u16) -> io::Result<u16> {
    if previous > 0 {
        queue!(out, cursor::MoveUp(previous))?;
    }
    queue!(out, cursor::MoveToColumn(0), terminal::Clear(terminal::ClearType::FromCursorDown))?;
    for line in lines {
        // Raw mode: a bare `\n` would not return the carriage.
        write!(out, "{line}\r\n")?;
    }
    out.flush()?;
    let width = terminal::size().map_or(0, |(columns, _)| columns);
    Ok(u16::try_from(screen_rows(lines, width)).unwrap_or(u16::MAX))
}

/// How many rows `lines` take on a screen `width` columns wide (0: unknown, one row each). A line wider than
/// the screen wraps; characters are counted as one column each, which holds for the UI's own text (ASCII and a
/// few one-column symbols) and errs low only for wide scripts in server-supplied names.
fn screen_rows(lines: &[String], width: u16) -> usize {
    if width == 0 {
        return lines.len();
    }
    let width = usize::from(width);
    lines.iter().map(|line| line.chars().count().div_ceil(width).max(1)).sum()
}

/// Prints lines outside any dialog (cooked mode).
fn write_lines(lines: &[String]) {
    let mut out = io::stdout();
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}

/// What is printed above a dialog, once: the QR code of a new authenticator app (and its key, for typing in by
/// hand), new recovery codes. On the person's own screen, as a phone app would show them.
fn preamble(request: &PromptRequest) -> Vec<String> {
    match request {
        PromptRequest::EnrolTotp { enrolment } => {
            let mut lines = vec!["Add an authenticator app: scan this QR code with it.".to_owned()];
            lines.extend(qr_lines(enrolment.uri.expose_secret()));
            lines.push(format!(
                "  Or type this key into the app: {}",
                grouped(enrolment.secret.expose_secret())
            ));
            lines
        }
        PromptRequest::ShowRecoveryCodes { codes } => {
            let mut lines =
                vec!["Your recovery codes. Each works once; keep them somewhere safe:".to_owned()];
            for pair in codes.chunks(2) {
                let pair: Vec<&str> = pair.iter().map(|code| code.expose_secret()).collect();
                lines.push(format!("    {}", pair.join("    ")));
            }
            lines
        }
        _ => vec![],
    }
}

/// A QR code of `text` in Unicode half blocks (two modules a character cell), dark on light whatever the
/// terminal's colours; nothing when the text does not fit a QR code.
fn qr_lines(text: &str) -> Vec<String> {
    use qrcode::QrCode;
    use qrcode::render::unicode::Dense1x2;
    match QrCode::new(text.as_bytes()) {
        Ok(code) => code
            .render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build()
            .lines()
            .map(|line| format!("  {line}"))
            .collect(),
        Err(_) => vec![],
    }
}

/// A base32 key in groups of four, as authenticator apps show keys for typing.
fn grouped(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    chars.chunks(4).map(|group| group.iter().collect::<String>()).collect::<Vec<_>>().join(" ")
}

/// The error line for a failed try.
fn failure_line(error: &StepUpError, attempts_left: u8, glyphs: &Glyphs) -> String {
    let tries =
        if attempts_left == 1 { "1 try left".to_owned() } else { format!("{attempts_left} tries left") };
    format!("{} That did not work: {error}. {tries}.", glyphs.cross)
}

/// One dialog's state: pure, so it is tested without a terminal. `Debug` leaves out what was typed.
pub(crate) enum Dialog {
    /// Pick a method.
    Choose { title: String, options: Vec<Credential>, selected: usize },
    /// Type a code.
    Code { title: String, typed: Zeroizing<String>, can_resend: bool },
    /// Press Enter to go on; `quoted` is shown in quotes under the title (what the person agrees to).
    Confirm { title: String, quoted: Option<String> },
}

impl std::fmt::Debug for Dialog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dialog::Choose { title, selected, .. } => f
                .debug_struct("Choose")
                .field("title", title)
                .field("selected", selected)
                .finish_non_exhaustive(),
            Dialog::Code { title, typed, can_resend } => f
                .debug_struct("Code")
                .field("title", title)
                .field("typed", &format_args!("<{} characters>", typed.chars().count()))
                .field("can_resend", can_resend)
                .finish(),
            Dialog::Confirm { title, .. } => {
                f.debug_struct("Confirm").field("title", title).finish_non_exhaustive()
            }
        }
    }
}

/// An empty code buffer, allocated once at its full size so no copy of a partly typed code is left behind in a
/// freed allocation (the buffer itself is wiped on drop).
fn code_buffer() -> Zeroizing<String> {
    Zeroizing::new(String::with_capacity(MAX_CODE_LEN))
}

impl Dialog {
    /// The dialog for `request`; `None` for a request that is not a question (`Failed`) or a choice of nothing.
    pub(crate) fn for_request(request: &PromptRequest) -> Option<Self> {
        Some(match request {
            PromptRequest::ChooseMethod { route, options, preselected } => {
                let options = options.credentials().to_vec();
                if options.is_empty() {
                    return None;
                }
                let selected = preselected
                    .as_ref()
                    .and_then(|id| options.iter().position(|credential| credential.id == *id))
                    .unwrap_or(0);
                Dialog::Choose {
                    title: format!("Verify it's you ({route}). Choose a method:"),
                    options,
                    selected,
                }
            }
            PromptRequest::EnterOtp { destination_masked, can_resend } => Dialog::Code {
                title: format!("Enter the code sent to {destination_masked}:"),
                typed: code_buffer(),
                can_resend: *can_resend,
            },
            PromptRequest::EnterTotp => Dialog::Code {
                title: "Enter the 6-digit code from your authenticator app:".to_owned(),
                typed: code_buffer(),
                can_resend: false,
            },
            PromptRequest::EnterRecoveryCode => Dialog::Code {
                title: "Enter one of your recovery codes:".to_owned(),
                typed: code_buffer(),
                can_resend: false,
            },
            PromptRequest::ConfirmWallet { address, message } => Dialog::Confirm {
                title: format!("Sign with wallet {address}?"),
                quoted: Some(message.clone()),
            },
            PromptRequest::UsePasskey => Dialog::Confirm {
                title: "Use your passkey. Press Enter, then follow your authenticator.".to_owned(),
                quoted: None,
            },
            PromptRequest::EnrolTotp { .. } => Dialog::Code {
                title: "Enter the 6-digit code the app shows now:".to_owned(),
                typed: code_buffer(),
                can_resend: false,
            },
            PromptRequest::ShowRecoveryCodes { .. } => Dialog::Confirm {
                title: "Saved your recovery codes? They are not shown again.".to_owned(),
                quoted: None,
            },
            PromptRequest::ConfirmRemoval { what } => {
                Dialog::Confirm { title: format!("Remove this factor: {what}?"), quoted: None }
            }
            PromptRequest::Failed { .. } => return None,
        })
    }

    /// What to draw now.
    pub(crate) fn lines(&self, g: &Glyphs) -> Vec<String> {
        match self {
            Dialog::Choose { title, options, selected } => {
                let mut lines = vec![title.clone()];
                for (index, credential) in options.iter().enumerate() {
                    let marker = if index == *selected { g.pointer } else { " " };
                    lines.push(format!("  {marker} {}. {}", index + 1, label(credential, g)));
                }
                lines.push(format!("  {} move {dot} Enter choose {dot} Esc cancel", g.arrows, dot = g.dot));
                lines
            }
            Dialog::Code { title, typed, can_resend } => {
                let dot = g.dot;
                let keys = if *can_resend {
                    format!("  Enter submit {dot} Ctrl-R resend code {dot} Esc cancel")
                } else {
                    format!("  Enter submit {dot} Esc cancel")
                };
                vec![title.clone(), format!("  {} {}", g.caret, "*".repeat(typed.chars().count())), keys]
            }
            Dialog::Confirm { title, quoted } => {
                let mut lines = vec![title.clone()];
                if let Some(quoted) = quoted {
                    lines.push(format!("  {}{quoted}{}", g.open_quote, g.close_quote));
                }
                lines.push(format!("  Enter continue {} Esc cancel", g.dot));
                lines
            }
        }
    }

    /// Handles a key; `Some` when the dialog has its answer.
    pub(crate) fn on_key(&mut self, key: KeyEvent) -> Option<PromptReply> {
        // Windows also reports releases; a key counts once. A held Enter must not confirm the next dialog too.
        if key.kind == KeyEventKind::Release
            || (key.kind == KeyEventKind::Repeat && key.code == KeyCode::Enter)
        {
            return None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        // Raw mode reads a bare line feed as Ctrl-J and a backspace byte as Ctrl-H: they mean Enter and Backspace.
        let code = match key.code {
            KeyCode::Char('j') if ctrl => KeyCode::Enter,
            KeyCode::Char('h') if ctrl => KeyCode::Backspace,
            code => code,
        };
        if code == KeyCode::Esc || (ctrl && matches!(code, KeyCode::Char('c' | 'd'))) {
            return Some(PromptReply::Cancel);
        }
        match self {
            Dialog::Choose { options, selected, .. } => match code {
                KeyCode::Up => {
                    *selected = selected.checked_sub(1).unwrap_or(options.len().saturating_sub(1));
                    None
                }
                KeyCode::Down | KeyCode::Tab => {
                    *selected = if *selected + 1 >= options.len() { 0 } else { *selected + 1 };
                    None
                }
                KeyCode::Char('k') if !ctrl => self.on_key(KeyEvent::new(KeyCode::Up, KeyModifiers::NONE)),
                KeyCode::Char('j') if !ctrl => self.on_key(KeyEvent::new(KeyCode::Down, KeyModifiers::NONE)),
                KeyCode::Enter => options.get(*selected).cloned().map(PromptReply::Choose),
                KeyCode::Char(digit @ '1'..='9') if !ctrl => {
                    let index = digit as usize - '1' as usize;
                    options.get(index).cloned().map(PromptReply::Choose)
                }
                _ => None,
            },
            Dialog::Code { typed, can_resend, .. } => match code {
                KeyCode::Char('r') if ctrl && *can_resend => Some(PromptReply::Resend),
                KeyCode::Char(_) if ctrl => None,
                KeyCode::Char(c) if !c.is_control() && typed.len() + c.len_utf8() <= MAX_CODE_LEN => {
                    typed.push(c);
                    None
                }
                KeyCode::Backspace => {
                    typed.pop();
                    None
                }
                KeyCode::Enter if !typed.trim().is_empty() => {
                    Some(PromptReply::Code(SecretString::new(typed.trim())))
                }
                _ => None,
            },
            Dialog::Confirm { .. } => (code == KeyCode::Enter).then_some(PromptReply::Confirm),
        }
    }

    /// The line left in the scrollback once the dialog is answered (never the code itself).
    pub(crate) fn summary(&self, reply: &PromptReply, g: &Glyphs) -> String {
        let title = match self {
            Dialog::Choose { title, .. } | Dialog::Code { title, .. } | Dialog::Confirm { title, .. } => {
                title
            }
        };
        let answer = match reply {
            PromptReply::Choose(credential) => label(credential, g),
            PromptReply::Code(code) => "*".repeat(code.expose_secret().chars().count()),
            PromptReply::Resend => "(sending a new code)".to_owned(),
            PromptReply::Confirm => g.check.to_owned(),
            PromptReply::Cancel => "(cancelled)".to_owned(),
        };
        format!("{title} {answer}")
    }
}

/// How a credential reads in the menu: the method, and the server's name for it when there is one.
fn label(credential: &Credential, g: &Glyphs) -> String {
    let method = credential.method.label();
    match &credential.alias {
        // The server often names a device after its kind ("Passkey"): say it once.
        Some(alias) if !alias.is_empty() && !method.to_lowercase().contains(&alias.to_lowercase()) => {
            format!("{method} {} {alias}", g.dash)
        }
        _ => method.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use stepup_core::{Method, MethodOptions, Route};

    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    fn options() -> MethodOptions {
        MethodOptions::known([
            Credential::new("t", Method::Totp, Some("phone".to_owned())),
            Credential::new("p", Method::Passkey, Some("passkey".to_owned())),
            Credential::new("r", Method::RecoveryCode, None),
        ])
    }

    fn choice() -> Dialog {
        let request =
            PromptRequest::ChooseMethod { route: Route::Mfa, options: options(), preselected: None };
        Dialog::for_request(&request).unwrap()
    }

    #[test]
    fn the_preselected_option_is_highlighted_first_and_another_can_be_chosen() {
        let preselected = Some(stepup_core::CredentialId::new("p"));
        let request = PromptRequest::ChooseMethod { route: Route::Mfa, options: options(), preselected };
        let mut dialog = Dialog::for_request(&request).unwrap();
        assert!(dialog.lines(&Glyphs::UNICODE)[2].contains("❯ 2. Passkey"));
        let Some(PromptReply::Choose(chosen)) = dialog.on_key(key(KeyCode::Enter)) else {
            panic!("a choice")
        };
        assert_eq!(chosen.method, Method::Passkey);
        let mut dialog = Dialog::for_request(&request).unwrap();
        assert_eq!(dialog.on_key(key(KeyCode::Up)), None);
        let Some(PromptReply::Choose(chosen)) = dialog.on_key(key(KeyCode::Enter)) else {
            panic!("a choice")
        };
        assert_eq!(chosen.method, Method::Totp, "the person picks another");
        // A suggestion that is not among the options highlights the first.
        let unknown = Some(stepup_core::CredentialId::new("gone"));
        let request =
            PromptRequest::ChooseMethod { route: Route::Mfa, options: options(), preselected: unknown };
        assert!(Dialog::for_request(&request).unwrap().lines(&Glyphs::UNICODE)[1].contains("❯ 1."));
    }

    #[test]
    fn an_enrolment_shows_its_qr_code_and_key_once_and_reads_the_first_code() {
        let enrolment = crate::mfa::TotpEnrolment {
            device_id: stepup_core::CredentialId::new("d1"),
            secret: SecretString::new("JBSWY3DPEHPK3PXP"),
            uri: SecretString::new("otpauth://totp/App:alice?secret=JBSWY3DPEHPK3PXP&issuer=App"),
        };
        let request = PromptRequest::EnrolTotp { enrolment };
        let shown = preamble(&request);
        assert!(shown.len() > 10, "a QR code: {shown:?}");
        assert!(shown.iter().any(|line| line.contains('█') || line.contains('▀') || line.contains('▄')));
        assert!(shown.last().unwrap().ends_with("JBSW Y3DP EHPK 3PXP"));
        let mut dialog = Dialog::for_request(&request).unwrap();
        for c in "123456".chars() {
            assert_eq!(dialog.on_key(key(KeyCode::Char(c))), None);
        }
        assert_eq!(dialog.on_key(key(KeyCode::Enter)), Some(PromptReply::Code(SecretString::new("123456"))));
        assert!(!format!("{request:?}").contains("JBSWY3DP"), "Debug redacts the secret and the URI");
    }

    #[test]
    fn recovery_codes_are_listed_above_a_confirmation_and_removals_are_confirmed() {
        let codes: Vec<stepup_core::RecoveryCode> = ["aaaaa-bbbbb", "ccccc-ddddd", "eeeee-fffff"]
            .into_iter()
            .map(stepup_core::RecoveryCode::new)
            .collect();
        let request = PromptRequest::ShowRecoveryCodes { codes };
        let shown = preamble(&request);
        assert_eq!(shown[1].trim(), "aaaaa-bbbbb    ccccc-ddddd");
        assert_eq!(shown[2].trim(), "eeeee-fffff");
        let mut dialog = Dialog::for_request(&request).unwrap();
        assert_eq!(dialog.on_key(key(KeyCode::Enter)), Some(PromptReply::Confirm));
        let removal = PromptRequest::ConfirmRemoval { what: "Passkey added 2026-12-07".into() };
        let mut dialog = Dialog::for_request(&removal).unwrap();
        assert!(dialog.lines(&Glyphs::UNICODE)[0].contains("Remove this factor: Passkey added 2026-12-07?"));
        assert_eq!(dialog.on_key(key(KeyCode::Esc)), Some(PromptReply::Cancel));
        assert!(preamble(&removal).is_empty());
    }

    #[test]
    fn arrows_move_the_selection_and_wrap() {
        let mut dialog = choice();
        assert!(dialog.lines(&Glyphs::UNICODE)[1].contains("❯ 1. Authenticator app (TOTP) — phone"));
        assert!(
            dialog.lines(&Glyphs::UNICODE)[2].ends_with("2. Passkey"),
            "an alias that repeats the kind is not shown"
        );
        assert_eq!(dialog.on_key(key(KeyCode::Up)), None);
        assert!(
            dialog.lines(&Glyphs::UNICODE)[3].contains("❯ 3. Recovery code"),
            "up from the top wraps to the bottom"
        );
        assert_eq!(dialog.on_key(key(KeyCode::Down)), None);
        assert_eq!(dialog.on_key(key(KeyCode::Down)), None);
        let Some(PromptReply::Choose(chosen)) = dialog.on_key(key(KeyCode::Enter)) else {
            panic!("a choice")
        };
        assert_eq!(chosen.method, Method::Passkey);
    }

    #[test]
    fn a_digit_chooses_directly_and_out_of_range_digits_are_ignored() {
        let mut dialog = choice();
        assert_eq!(dialog.on_key(key(KeyCode::Char('9'))), None);
        let Some(PromptReply::Choose(chosen)) = dialog.on_key(key(KeyCode::Char('3'))) else {
            panic!("a choice")
        };
        assert_eq!(chosen.method, Method::RecoveryCode);
    }

    #[test]
    fn codes_are_masked_editable_and_never_summarised_in_clear() {
        let request =
            PromptRequest::EnterOtp { destination_masked: "a***@example.com".to_owned(), can_resend: true };
        let mut dialog = Dialog::for_request(&request).unwrap();
        assert_eq!(dialog.on_key(key(KeyCode::Enter)), None, "an empty code is not submitted");
        for c in "1239".chars() {
            assert_eq!(dialog.on_key(key(KeyCode::Char(c))), None);
        }
        assert_eq!(dialog.on_key(key(KeyCode::Backspace)), None);
        assert_eq!(dialog.lines(&Glyphs::UNICODE)[1], "  › ***");
        assert!(dialog.lines(&Glyphs::UNICODE).iter().all(|line| !line.contains("123")));
        let reply = dialog.on_key(key(KeyCode::Enter)).unwrap();
        assert_eq!(reply, PromptReply::Code("123".into()));
        assert!(!dialog.summary(&reply, &Glyphs::UNICODE).contains("123"));
    }

    #[test]
    fn ctrl_r_resends_only_where_a_resend_is_possible() {
        let otp = PromptRequest::EnterOtp { destination_masked: "x".to_owned(), can_resend: true };
        assert_eq!(Dialog::for_request(&otp).unwrap().on_key(ctrl('r')), Some(PromptReply::Resend));
        let mut totp = Dialog::for_request(&PromptRequest::EnterTotp).unwrap();
        assert_eq!(totp.on_key(ctrl('r')), None);
        assert!(!totp.lines(&Glyphs::UNICODE).join("\n").contains("resend"));
    }

    #[test]
    fn esc_and_ctrl_c_cancel_every_dialog() {
        let requests = [
            PromptRequest::EnterTotp,
            PromptRequest::EnterRecoveryCode,
            PromptRequest::UsePasskey,
            PromptRequest::ConfirmWallet { address: "0xabc".to_owned(), message: "Sign in".to_owned() },
        ];
        for request in &requests {
            assert_eq!(
                Dialog::for_request(request).unwrap().on_key(key(KeyCode::Esc)),
                Some(PromptReply::Cancel)
            );
            assert_eq!(Dialog::for_request(request).unwrap().on_key(ctrl('c')), Some(PromptReply::Cancel));
        }
        assert_eq!(choice().on_key(key(KeyCode::Esc)), Some(PromptReply::Cancel));
    }

    #[test]
    fn raw_mode_control_bytes_mean_enter_and_backspace_and_held_enter_counts_once() {
        let mut dialog = Dialog::for_request(&PromptRequest::EnterRecoveryCode).unwrap();
        for c in "ab".chars() {
            dialog.on_key(key(KeyCode::Char(c)));
        }
        assert_eq!(dialog.on_key(ctrl('h')), None);
        assert_eq!(dialog.lines(&Glyphs::UNICODE)[1], "  › *");
        let held = KeyEvent::new_with_kind(KeyCode::Enter, KeyModifiers::NONE, KeyEventKind::Repeat);
        assert_eq!(dialog.on_key(held), None);
        assert_eq!(dialog.on_key(ctrl('j')), Some(PromptReply::Code("a".into())));
        // In a menu, Ctrl-J is Enter, not "down".
        let Some(PromptReply::Choose(chosen)) = choice().on_key(ctrl('j')) else { panic!("a choice") };
        assert_eq!(chosen.method, Method::Totp);
    }

    #[test]
    fn debug_never_shows_the_typed_code() {
        let mut dialog = Dialog::for_request(&PromptRequest::EnterTotp).unwrap();
        for c in "482913".chars() {
            dialog.on_key(key(KeyCode::Char(c)));
        }
        let debug = format!("{dialog:?}");
        assert!(!debug.contains("482913"), "{debug}");
        assert!(debug.contains("<6 characters>"), "{debug}");
    }

    #[test]
    fn wrapped_lines_count_as_the_rows_they_take() {
        let lines = vec!["x".repeat(10), String::new(), "y".repeat(25)];
        assert_eq!(screen_rows(&lines, 10), 1 + 1 + 3);
        assert_eq!(screen_rows(&lines, 0), 3, "unknown width: a row per line");
    }

    #[test]
    fn ascii_glyphs_draw_plain_ascii() {
        let lines = choice().lines(&Glyphs::ASCII).join("\n");
        assert!(lines.is_ascii(), "{lines}");
        assert!(lines.contains("  > 1. Authenticator app (TOTP) - phone"), "{lines}");
        let wallet =
            PromptRequest::ConfirmWallet { address: "0xabc".to_owned(), message: "Sign in".to_owned() };
        let lines = Dialog::for_request(&wallet).unwrap().lines(&Glyphs::ASCII).join("\n");
        assert!(lines.is_ascii() && lines.contains("\"Sign in\""), "{lines}");
        assert!(failure_line(&StepUpError::MfaInvalidCode, 2, &Glyphs::ASCII).is_ascii());
    }

    #[tokio::test]
    async fn without_a_terminal_secrets_are_not_shown_and_the_prompt_is_cancelled() {
        let frontend =
            TerminalFrontend { has_terminal: || false, ..TerminalFrontend::with_glyphs(&Glyphs::ASCII) };
        let codes = vec![stepup_core::RecoveryCode::new("aaaaa-bbbbb")];
        let reply = tokio::time::timeout(
            Duration::from_secs(5),
            frontend.prompt(PromptRequest::ShowRecoveryCodes { codes }),
        )
        .await
        .unwrap();
        assert_eq!(reply, PromptReply::Cancel);
    }

    #[test]
    fn a_failed_try_is_repeated_on_the_next_dialog_only() {
        let frontend =
            TerminalFrontend { has_terminal: || false, ..TerminalFrontend::with_glyphs(&Glyphs::ASCII) };
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let failed = PromptRequest::Failed { error: StepUpError::MfaInvalidCode, attempts_left: 2 };
        assert_eq!(runtime.block_on(frontend.prompt(failed)), PromptReply::Confirm);
        assert!(frontend.failure.lock().unwrap().as_deref().unwrap().contains("2 tries left"));
        // The next dialog takes it (here: cancelled, no terminal); the one after starts clean.
        runtime.block_on(frontend.prompt(PromptRequest::EnterTotp));
        assert_eq!(*frontend.failure.lock().unwrap(), None);
    }

    #[test]
    fn confirmations_wait_for_enter() {
        let mut dialog = Dialog::for_request(&PromptRequest::UsePasskey).unwrap();
        assert_eq!(dialog.on_key(key(KeyCode::Char('x'))), None);
        assert_eq!(dialog.on_key(key(KeyCode::Enter)), Some(PromptReply::Confirm));
    }

    #[test]
    fn failures_read_clearly_with_the_tries_left() {
        assert_eq!(
            failure_line(&StepUpError::MfaInvalidCode, 2, &Glyphs::UNICODE),
            "✖ That did not work: the code is not valid. 2 tries left."
        );
        assert!(failure_line(&StepUpError::MfaInvalidCode, 1, &Glyphs::UNICODE).ends_with("1 try left."));
        assert!(
            Dialog::for_request(&PromptRequest::Failed { error: StepUpError::Timeout, attempts_left: 1 })
                .is_none()
        );
    }
}

//! A game's fixed-timestep loop that runs step-up without ever blocking a frame.
//!
//! ```text
//! cargo run --example game_loop
//! ```
//!
//! The engine lives on a tokio runtime beside the loop. The game asks for step-up (to open a chest that holds the
//! wallet's exported key), then, once a frame, polls [`FrontendInbox::try_next`] for what the engine asks and
//! draws its own text UI. The player's keys are scripted so the example runs unattended: each frame the script
//! "presses" at most one key. A real game feeds its own input to the same [`PendingPrompt::answer`].
#![allow(clippy::print_stdout)] // A text-mode game: printing is its drawing.

use std::time::{Duration, Instant};

use stepup::engine::{
    ChannelFrontend, FrontendEvent, FrontendInbox, PendingPrompt, PromptReply, PromptRequest,
};
use stepup::{Method, Scope, StepUpError, TokenInfo};
use stepup_demo::{DemoServer, MfaPerson, ProtectedCall, call_protected};
use tokio::sync::oneshot;

/// 60 frames a second.
const FRAME: Duration = Duration::from_micros(16_667);
/// Give up after this many frames (30 s): the example must end, whatever happens.
const MAX_FRAMES: u64 = 30 * 60;
/// The scripted player presses a key every this many frames (a quick but human pace).
const FRAMES_PER_KEY: u64 = 3;

/// Where the game is.
enum Scene {
    /// Walking to the chest.
    Exploring,
    /// The engine asked something; the player answers over the next frames.
    Prompt { prompt: PendingPrompt, typed: String, since: u64 },
    /// The answer is with the engine; nothing to draw but a spinner.
    Waiting,
    /// Step-up done: the chest's protected call is on its way.
    Opening(oneshot::Receiver<Result<ProtectedCall, stepup_demo::DemoError>>),
    /// The end.
    Done(Result<String, String>),
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The engine's home: a runtime beside the game loop, not under it.
    let runtime = tokio::runtime::Runtime::new()?;
    let demo = runtime.block_on(DemoServer::start())?;
    let alice = runtime.block_on(demo.seed_mfa_person("alice@example.com"))?;
    let (frontend, mut inbox) = ChannelFrontend::new();
    let engine = runtime.block_on(
        demo.engine_for(&alice.session)
            .passkey_authenticator(alice.passkey.clone())
            .frontend(frontend)
            .build(),
    )?;
    println!("Game on (reference server at {}). Alice walks to the chest...", demo.base_url());

    let mut scene = Scene::Exploring;
    let mut step_up: Option<oneshot::Receiver<Result<TokenInfo, StepUpError>>> = None;
    let mut longest_frame = Duration::ZERO;
    let mut last_drawn = String::new();
    let mut next_frame = Instant::now();
    let mut frame = 0;
    while frame < MAX_FRAMES {
        let started = Instant::now();

        // Game logic. At frame 20 Alice reaches the chest: ask the engine, on its runtime, never here.
        if frame == 20 {
            let (done, result) = oneshot::channel();
            let engine = engine.clone();
            runtime.spawn(async move {
                let _ = done.send(engine.prompt_step_up_auth(&[Scope::WalletExport]).await);
            });
            step_up = Some(result);
        }
        scene = update(scene, frame, &mut inbox, &mut step_up, &alice, &runtime, &engine);

        // Draw (only what changed, so the transcript stays readable).
        let text = draw(&scene);
        if text != last_drawn {
            println!("[frame {frame:4}] {text}");
            last_drawn = text;
        }
        if let Scene::Done(_) = scene {
            break;
        }

        longest_frame = longest_frame.max(started.elapsed());
        next_frame += FRAME;
        std::thread::sleep(next_frame.saturating_duration_since(Instant::now()));
        frame += 1;
    }
    let frame_ms = longest_frame.as_secs_f64() * 1000.0;
    println!("{frame} frames; the longest frame's work took {frame_ms:.2} ms of its 16.7 ms budget.");
    match scene {
        Scene::Done(Ok(_)) => Ok(()),
        Scene::Done(Err(why)) => Err(why.into()),
        _ => Err("the session did not finish in time".into()),
    }
}

/// One frame of game logic: the engine's events, the scripted player's key, the background results.
fn update(
    scene: Scene,
    frame: u64,
    inbox: &mut FrontendInbox,
    step_up: &mut Option<oneshot::Receiver<Result<TokenInfo, StepUpError>>>,
    alice: &MfaPerson,
    runtime: &tokio::runtime::Runtime,
    engine: &stepup::engine::StepUpAuth,
) -> Scene {
    let mut scene = scene;
    // What the engine asks: never waits.
    while let Some(event) = inbox.try_next() {
        match event {
            FrontendEvent::Prompt(prompt) => {
                scene = Scene::Prompt { prompt, typed: String::new(), since: frame }
            }
            FrontendEvent::Finished(Err(error)) => {
                scene = Scene::Done(Err(format!("step-up failed: {error}")))
            }
            // Success is read from the step-up call's own result below.
            _ => {}
        }
    }
    // The step-up call's result, if it has come.
    if let Some(result) = step_up.as_mut().and_then(|pending| pending.try_recv().ok()) {
        *step_up = None;
        scene = match result {
            Ok(_) => {
                let (done, opened) = oneshot::channel();
                let (engine, session) = (engine.clone(), alice.session.clone());
                runtime.spawn(async move {
                    let _ = done.send(call_protected(&engine, &session, &Scope::WalletExport).await);
                });
                Scene::Opening(opened)
            }
            Err(error) => Scene::Done(Err(format!("step-up failed: {error}"))),
        };
    }
    match scene {
        // The player sees a request for at least one frame before pressing anything.
        Scene::Prompt { prompt, typed, since } if frame > since && frame.is_multiple_of(FRAMES_PER_KEY) => {
            play(prompt, typed, since, alice)
        }
        Scene::Opening(mut opened) => match opened.try_recv() {
            Ok(Ok(call)) if call.succeeded() => {
                Scene::Done(Ok(format!("The chest opens: the protected call returned HTTP {}.", call.status)))
            }
            Ok(Ok(call)) => Scene::Done(Err(format!("the chest stays shut: HTTP {}", call.status))),
            Ok(Err(error)) => Scene::Done(Err(error.to_string())),
            Err(oneshot::error::TryRecvError::Empty) => Scene::Opening(opened),
            Err(oneshot::error::TryRecvError::Closed) => Scene::Done(Err("the call was dropped".to_owned())),
        },
        other => other,
    }
}

/// The scripted player: one key per call. Picks the authenticator app, reads its code, types it digit by digit.
fn play(prompt: PendingPrompt, mut typed: String, since: u64, alice: &MfaPerson) -> Scene {
    match prompt.request() {
        PromptRequest::ChooseMethod { options, .. } => {
            let totp = options.credentials().iter().find(|c| c.method == Method::Totp).cloned();
            answer(prompt, totp.map_or(PromptReply::Cancel, PromptReply::Choose))
        }
        PromptRequest::EnterTotp => {
            let Ok(code) = alice.totp.current_code() else { return answer(prompt, PromptReply::Cancel) };
            match code.chars().nth(typed.len()) {
                Some(digit) => {
                    typed.push(digit);
                    Scene::Prompt { prompt, typed, since }
                }
                None => answer(prompt, PromptReply::Code(typed.as_str().into())),
            }
        }
        // Anything else (a passkey, a failed try...): go on.
        _ => answer(prompt, PromptReply::Confirm),
    }
}

fn answer(prompt: PendingPrompt, reply: PromptReply) -> Scene {
    // `false` means the engine already gave up on this request (cancel, timeout): its end notice follows.
    let _taken = prompt.answer(reply);
    Scene::Waiting
}

/// The scene as one line of text.
fn draw(scene: &Scene) -> String {
    match scene {
        Scene::Exploring => "Alice explores the dungeon.".to_owned(),
        Scene::Prompt { prompt, typed, .. } => match prompt.request() {
            PromptRequest::ChooseMethod { route, options, .. } => {
                let methods: Vec<String> =
                    options.credentials().iter().map(|c| c.method.to_string()).collect();
                format!("The chest is locked ({route} needed). Methods: {}", methods.join(", "))
            }
            PromptRequest::EnterTotp => format!("Authenticator code: {:<6}", "*".repeat(typed.len())),
            other => format!("The engine asks: {other:?}"),
        },
        Scene::Waiting => "Checking...".to_owned(),
        Scene::Opening(_) => "Verified: elevated. Opening the chest...".to_owned(),
        Scene::Done(Ok(message)) => message.clone(),
        Scene::Done(Err(why)) => format!("Game over: {why}."),
    }
}

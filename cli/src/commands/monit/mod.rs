//! `pmx monit`: a full-screen monitor. One connection streams every instance's figures and
//! the selected app's logs and events (`Request::Monit`); the loop sleeps until a frame, a
//! key or an action's outcome arrives, so it never polls. The terminal is restored on `q`,
//! on Ctrl-C and on a panic (ratatui's hook).

mod state;
mod view;

use std::sync::mpsc;

use pmx_core::paths::Paths;
use pmx_core::protocol::{MonitRequest, ReloadRequest, Request, Response, Targets};
use ratatui::crossterm::event::{self, Event as TermEvent, KeyEventKind};

use super::{ask, failure, unexpected};
use crate::client::Client;
use crate::error::CliError;
use crate::render::now_ms;
use state::{Effect, Monit, Verb};

/// What wakes the loop.
enum Wake {
    Update(Box<pmx_core::protocol::MonitUpdate>),
    Term(TermEvent),
    Done(String),
    Lost(String),
}

pub fn run(paths: &Paths) -> Result<(), CliError> {
    let mut reader = Client::connect(paths)?;
    let mut sender = reader.try_clone()?;
    let first = reader.request(&Request::Monit(MonitRequest::default()))?;
    let first = match first {
        Response::Monit(u) => u,
        Response::Error(f) => return Err(failure(f)),
        other => return Err(unexpected(other)),
    };
    let (tx, rx) = mpsc::channel();
    let frames = tx.clone();
    std::thread::spawn(move || {
        loop {
            let wake = match reader.next() {
                Ok(Response::Monit(u)) => Wake::Update(u),
                Ok(other) => Wake::Lost(format!("unexpected answer: {other:?}")),
                Err(CliError::Usage(e) | CliError::Failed(e) | CliError::Lost(e)) => Wake::Lost(e),
                Err(CliError::Incomplete) => Wake::Lost("incomplete answer".into()),
            };
            let lost = matches!(wake, Wake::Lost(_));
            if frames.send(wake).is_err() || lost {
                return;
            }
        }
    });
    let keys = tx.clone();
    std::thread::spawn(move || {
        while let Ok(e) = event::read() {
            if keys.send(Wake::Term(e)).is_err() {
                return;
            }
        }
    });
    let mut terminal = ratatui::try_init()
        .map_err(|e| CliError::Failed(format!("cannot use the terminal: {e}")))?;
    let mut monit = Monit::default();
    let mut wake = Some(Wake::Update(first));
    let outcome = loop {
        let effect = match wake.take() {
            Some(Wake::Update(u)) => monit.update(*u),
            Some(Wake::Term(TermEvent::Key(k))) if k.kind != KeyEventKind::Release => monit.key(k),
            Some(Wake::Term(_)) => None,
            Some(Wake::Done(text)) => {
                monit.status = text;
                None
            }
            Some(Wake::Lost(e)) => break Err(CliError::Lost(e)),
            None => None,
        };
        match effect {
            Some(Effect::Quit) => break Ok(()),
            Some(Effect::Focus(app)) => {
                if let Err(e) = sender.send(&Request::Monit(MonitRequest { app })) {
                    break Err(e);
                }
            }
            Some(Effect::Act(verb, app)) => act(paths, verb, app, tx.clone()),
            None => {}
        }
        if let Err(e) = terminal.draw(|frame| view::draw(frame, &monit, now_ms())) {
            break Err(CliError::Failed(format!("cannot draw: {e}")));
        }
        wake = match rx.recv() {
            Ok(w) => Some(w),
            Err(_) => break Ok(()),
        };
    };
    ratatui::restore();
    outcome
}

/// Carries out an action on its own connection, so a long reload never freezes the screen.
fn act(paths: &Paths, verb: Verb, app: String, done: mpsc::Sender<Wake>) {
    let paths = paths.clone();
    std::thread::spawn(move || {
        let targets = Targets {
            targets: vec![app.clone()],
            force: false,
        };
        let request = match verb {
            Verb::Restart => Request::Restart(targets),
            Verb::Stop => Request::Stop(targets),
            Verb::Start => Request::StartApps(targets),
            Verb::Reload => Request::Reload(ReloadRequest {
                targets: vec![app.clone()],
                parallel: 1,
            }),
        };
        let text = match ask(&paths, &request) {
            Ok(Response::Processes(list)) if !list.notes.is_empty() => {
                format!("{} {app}: done ({})", verb.name(), list.notes.join("; "))
            }
            Ok(_) => format!("{} {app}: done", verb.name()),
            Err(CliError::Usage(e) | CliError::Failed(e) | CliError::Lost(e)) => {
                format!("{} {app} failed: {e}", verb.name())
            }
            Err(CliError::Incomplete) => format!("{} {app}: done in part", verb.name()),
        };
        let _ = done.send(Wake::Done(text));
    });
}

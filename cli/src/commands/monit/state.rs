//! What `monit` shows and how keys change it. Pure: frames and keys in, effects out, so every
//! key is tested without a terminal.

use std::collections::{HashMap, VecDeque};

use pmx_core::event::Event;
use pmx_core::protocol::{LogLine, MonitUpdate};
use pmx_core::view::ProcessView;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Samples kept per instance for the charts.
pub const CHART_SAMPLES: usize = 120;
const LOG_LINES: usize = 500;
const EVENTS: usize = 100;

/// What an action on the selected app does, once confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Restart,
    Reload,
    Stop,
    Start,
}

impl Verb {
    pub fn name(self) -> &'static str {
        match self {
            Verb::Restart => "restart",
            Verb::Reload => "reload",
            Verb::Stop => "stop",
            Verb::Start => "start",
        }
    }
}

/// What the loop must do after a key.
#[derive(Debug, PartialEq, Eq)]
pub enum Effect {
    /// Look at another app: ask the daemon for its logs and events.
    Focus(Option<String>),
    Act(Verb, String),
    Quit,
}

#[derive(Default)]
pub struct Monit {
    pub processes: Vec<ProcessView>,
    /// (tree CPU %, tree memory) by pm_id, oldest first.
    pub charts: HashMap<u32, VecDeque<(f32, u64)>>,
    /// Index among the visible rows.
    pub selected: usize,
    pub filter: String,
    /// The filter is being typed.
    pub typing: bool,
    /// The app logs and events are about.
    pub focus: Option<String>,
    pub logs: VecDeque<LogLine>,
    pub events: VecDeque<Event>,
    /// An action waiting for y/n.
    pub confirm: Option<(Verb, String)>,
    /// The last thing worth saying (an action's outcome, skipped lines).
    pub status: String,
}

impl Monit {
    /// The instances whose name contains the filter.
    pub fn visible(&self) -> Vec<&ProcessView> {
        self.processes
            .iter()
            .filter(|p| p.name.contains(self.filter.as_str()))
            .collect()
    }

    pub fn selected_process(&self) -> Option<&ProcessView> {
        self.visible().get(self.selected).copied()
    }

    /// Takes a frame of the stream; the effect asks for a first focus once apps are known.
    pub fn update(&mut self, u: MonitUpdate) -> Option<Effect> {
        if u.fresh {
            self.logs.clear();
            self.events.clear();
        }
        for recent in u.recent {
            // The last reading is the one `processes` carries: it is pushed below.
            let earlier = &recent.samples[..recent.samples.len().saturating_sub(1)];
            let start = earlier.len().saturating_sub(CHART_SAMPLES - 1);
            let chart = earlier[start..].iter().map(|r| (r.1, r.2));
            self.charts.insert(recent.id, chart.collect());
        }
        if let Some(processes) = u.processes {
            for p in &processes {
                let chart = self.charts.entry(p.id).or_default();
                chart.push_back((p.usage.tree_cpu, p.usage.tree_memory));
                if chart.len() > CHART_SAMPLES {
                    chart.pop_front();
                }
            }
            self.charts
                .retain(|id, _| processes.iter().any(|p| p.id == *id));
            self.processes = processes;
            self.clamp();
        }
        push_capped(&mut self.events, u.events, EVENTS);
        push_capped(&mut self.logs, u.logs, LOG_LINES);
        if u.missed > 0 {
            self.status = format!("{} log lines skipped (the terminal fell behind)", u.missed);
        }
        self.refocus()
    }

    pub fn key(&mut self, key: KeyEvent) -> Option<Effect> {
        let ctrl_c =
            key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl_c {
            return Some(Effect::Quit);
        }
        if let Some((verb, app)) = self.confirm.take() {
            return match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
                    self.status = format!("{} {app}…", verb.name());
                    Some(Effect::Act(verb, app))
                }
                _ => {
                    self.status = format!("{} {app} cancelled", verb.name());
                    None
                }
            };
        }
        if self.typing {
            match key.code {
                KeyCode::Enter => self.typing = false,
                KeyCode::Esc => {
                    self.typing = false;
                    self.filter.clear();
                }
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) => self.filter.push(c),
                _ => {}
            }
            self.clamp();
            return self.refocus();
        }
        let verb = match key.code {
            KeyCode::Char('q') | KeyCode::Esc => return Some(Effect::Quit),
            KeyCode::Up | KeyCode::Char('k') => {
                self.selected = self.selected.saturating_sub(1);
                return self.refocus();
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.selected += 1;
                self.clamp();
                return self.refocus();
            }
            KeyCode::Char('/') => {
                self.typing = true;
                return None;
            }
            KeyCode::Char('r') => Verb::Restart,
            KeyCode::Char('l') => Verb::Reload,
            KeyCode::Char('s') => Verb::Stop,
            KeyCode::Char('t') => Verb::Start,
            _ => return None,
        };
        if let Some(p) = self.selected_process() {
            self.confirm = Some((verb, p.name.clone()));
        }
        None
    }

    fn clamp(&mut self) {
        let n = self.visible().len();
        self.selected = self.selected.min(n.saturating_sub(1));
    }

    /// A focus change when the selected row is another app than the one looked at.
    fn refocus(&mut self) -> Option<Effect> {
        let app = self.selected_process().map(|p| p.name.clone());
        if app == self.focus {
            return None;
        }
        self.focus = app.clone();
        self.logs.clear();
        self.events.clear();
        Some(Effect::Focus(app))
    }
}

fn push_capped<T>(into: &mut VecDeque<T>, items: Vec<T>, cap: usize) {
    into.extend(items);
    while into.len() > cap {
        into.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pmx_core::protocol::{Reading, RecentSamples};

    fn view(id: u32, name: &str) -> ProcessView {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": name, "index": 0, "status": "online", "pid": 100 + id,
            "restarts": 0, "unstable_restarts": 0, "started_at": 0, "created_at": 0,
            "cpu": 1.0, "memory": 10, "user": "me", "last_exit": null, "error": null,
            "command": [], "out_log": "", "error_log": "",
            "spec": {"name": name, "script": "x", "cwd": "/"}
        }))
        .unwrap()
    }

    fn press(m: &mut Monit, code: KeyCode) -> Option<Effect> {
        m.key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn with_apps(names: &[&str]) -> Monit {
        let mut m = Monit::default();
        let processes = names
            .iter()
            .enumerate()
            .map(|(i, n)| view(i as u32, n))
            .collect();
        let first = m.update(MonitUpdate {
            processes: Some(processes),
            ..MonitUpdate::default()
        });
        assert_eq!(first, Some(Effect::Focus(Some(names[0].to_string()))));
        m
    }

    #[test]
    fn moving_the_selection_looks_at_the_app_under_it() {
        let mut m = with_apps(&["api", "api", "worker"]);
        assert_eq!(press(&mut m, KeyCode::Down), None, "same app, no new focus");
        assert_eq!(
            press(&mut m, KeyCode::Down),
            Some(Effect::Focus(Some("worker".into())))
        );
        assert_eq!(press(&mut m, KeyCode::Down), None, "stays on the last row");
        assert_eq!(m.selected, 2);
        assert_eq!(
            press(&mut m, KeyCode::Char('k')),
            Some(Effect::Focus(Some("api".into())))
        );
    }

    #[test]
    fn an_action_needs_a_confirmation() {
        let mut m = with_apps(&["api"]);
        assert_eq!(press(&mut m, KeyCode::Char('r')), None);
        assert_eq!(m.confirm, Some((Verb::Restart, "api".into())));
        assert_eq!(
            press(&mut m, KeyCode::Char('y')),
            Some(Effect::Act(Verb::Restart, "api".into()))
        );
        press(&mut m, KeyCode::Char('s'));
        assert_eq!(press(&mut m, KeyCode::Char('n')), None);
        assert!(m.confirm.is_none());
        assert!(m.status.contains("cancelled"));
    }

    #[test]
    fn the_filter_narrows_the_rows_and_esc_clears_it() {
        let mut m = with_apps(&["api", "worker", "web"]);
        press(&mut m, KeyCode::Char('/'));
        assert_eq!(
            press(&mut m, KeyCode::Char('w')),
            Some(Effect::Focus(Some("worker".into())))
        );
        assert_eq!(m.visible().len(), 2);
        assert_eq!(
            press(&mut m, KeyCode::Char('e')),
            Some(Effect::Focus(Some("web".into())))
        );
        assert_eq!(m.visible().len(), 1);
        let typed = press(&mut m, KeyCode::Char('q'));
        assert_eq!(
            typed,
            Some(Effect::Focus(None)),
            "typed (nothing matches), not quit"
        );
        press(&mut m, KeyCode::Backspace);
        press(&mut m, KeyCode::Enter);
        assert_eq!(m.filter, "we");
        assert_eq!(press(&mut m, KeyCode::Char('q')), Some(Effect::Quit));
        press(&mut m, KeyCode::Char('/'));
        press(&mut m, KeyCode::Esc);
        assert_eq!(m.visible().len(), 3);
    }

    #[test]
    fn ctrl_c_quits_even_while_typing_or_confirming() {
        let mut m = with_apps(&["api"]);
        press(&mut m, KeyCode::Char('r'));
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(m.key(ctrl_c), Some(Effect::Quit));
    }

    #[test]
    fn charts_keep_a_bounded_history_and_forget_deleted_instances() {
        let mut m = with_apps(&["api", "worker"]);
        for _ in 0..CHART_SAMPLES + 10 {
            m.update(MonitUpdate {
                processes: Some(vec![view(0, "api")]),
                ..MonitUpdate::default()
            });
        }
        assert_eq!(m.charts[&0].len(), CHART_SAMPLES);
        assert!(!m.charts.contains_key(&1));
    }

    #[test]
    fn charts_start_with_the_recent_samples_of_the_first_frame() {
        let mut m = Monit::default();
        let samples = (0..CHART_SAMPLES as u64 + 5)
            .map(|i| Reading(i * 1000, i as f32, 100 + i))
            .collect();
        let mut api = view(0, "api");
        api.usage.tree_cpu = 99.0;
        m.update(MonitUpdate {
            processes: Some(vec![api]),
            recent: vec![RecentSamples { id: 0, samples }],
            ..MonitUpdate::default()
        });
        let chart = &m.charts[&0];
        assert_eq!(chart.len(), CHART_SAMPLES, "bounded from the start");
        // The newest recent reading is the one the frame's process carries: not twice.
        let newest_recent = CHART_SAMPLES as f32 + 3.0;
        assert_eq!(
            chart[chart.len() - 2],
            (newest_recent, 100 + newest_recent as u64)
        );
        assert_eq!(chart.back().map(|c| c.0), Some(99.0));
    }
}

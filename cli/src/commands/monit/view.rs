//! Draws `monit`: the instances with small CPU and memory charts, the selected app's
//! metadata and larger charts, its last journal events, its live logs, and the keys.

use pmx_core::describe;
use pmx_core::spec::Interpreter;
use pmx_core::state::Status;
use pmx_core::units::{format_bytes, format_uptime};
use pmx_core::view::ProcessView;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row, Sparkline, Table, Wrap};

use super::state::Monit;

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The last `width` values as a row of bars, scaled to their maximum.
fn bars(values: impl Iterator<Item = f64>, width: usize) -> String {
    let values: Vec<f64> = values.collect();
    let shown = &values[values.len().saturating_sub(width)..];
    let max = shown.iter().cloned().fold(0.0, f64::max);
    shown
        .iter()
        .map(|v| {
            let level = if max > 0.0 { v / max * 7.0 } else { 0.0 };
            BARS[(level.round() as usize).min(7)]
        })
        .collect()
}

fn status_color(s: Status) -> Color {
    match s {
        Status::Online => Color::Green,
        Status::Errored => Color::Red,
        Status::Stopped => Color::DarkGray,
        _ => Color::Yellow,
    }
}

pub fn draw(frame: &mut Frame, m: &Monit, now: u64) {
    // The list takes the rows it needs, up to two fifths of the screen.
    let area = frame.area();
    let rows = m.visible().len() as u16 + 3;
    let [top, middle, bottom, keys] = Layout::vertical([
        Constraint::Length(rows.clamp(4, (area.height * 2 / 5).max(4))),
        Constraint::Length(16),
        Constraint::Min(4),
        Constraint::Length(1),
    ])
    .areas(area);
    instances(frame, top, m, now);
    let [meta, events] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(middle);
    details(frame, meta, m, now);
    journal(frame, events, m);
    logs(frame, bottom, m);
    footer(frame, keys, m);
    if let Some((verb, app)) = &m.confirm {
        confirm(frame, &format!("{} {app}? (y/n)", verb.name()));
    }
}

fn instances(frame: &mut Frame, area: Rect, m: &Monit, now: u64) {
    let header = Row::new([
        "id", "name", "status", "↺", "uptime", "cpu", "", "memory", "",
    ])
    .style(Style::new().add_modifier(Modifier::BOLD));
    let rows = m.visible().into_iter().map(|p| {
        let chart = m.charts.get(&p.id);
        let cpu = bars(chart.into_iter().flatten().map(|s| s.0 as f64), 12);
        let mem = bars(chart.into_iter().flatten().map(|s| s.1 as f64), 12);
        let uptime = p
            .started_at
            .filter(|_| p.pid.is_some())
            .map_or("0".into(), |t| format_uptime(now.saturating_sub(t)));
        Row::new(vec![
            Cell::from(p.id.to_string()),
            Cell::from(p.name.clone()),
            Cell::from(p.status.as_str()).style(Style::new().fg(status_color(p.status))),
            Cell::from(p.restarts.to_string()),
            Cell::from(uptime),
            Cell::from(format!("{:.1}%", p.usage.tree_cpu)),
            Cell::from(cpu).style(Style::new().fg(Color::Cyan)),
            Cell::from(format_bytes(p.usage.tree_memory)),
            Cell::from(mem).style(Style::new().fg(Color::Magenta)),
        ])
    });
    let widths = [
        Constraint::Length(4),
        Constraint::Min(12),
        Constraint::Length(16),
        Constraint::Length(4),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(12),
        Constraint::Length(9),
        Constraint::Length(12),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .block(Block::bordered().title(" apps "))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state = ratatui::widgets::TableState::default().with_selected(Some(m.selected));
    frame.render_stateful_widget(table, area, &mut state);
}

fn interpreter(p: &ProcessView) -> String {
    match &p.spec.interpreter {
        Interpreter::Auto => p.command.first().cloned().unwrap_or_else(|| "auto".into()),
        Interpreter::None => "none".into(),
        Interpreter::Program(prog) => prog.clone(),
    }
}

fn details(frame: &mut Frame, area: Rect, m: &Monit, now: u64) {
    let block = Block::bordered().title(" app ");
    let Some(p) = m.selected_process() else {
        frame.render_widget(Paragraph::new("no app").block(block), area);
        return;
    };
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [text, cpu, mem] = Layout::vertical([
        Constraint::Min(8),
        Constraint::Length(3),
        Constraint::Length(3),
    ])
    .areas(inner);
    let r = &p.spec.restart;
    let field = |k: &str, v: String| {
        Line::from(vec![
            Span::styled(format!("{k:<12}"), Style::new().fg(Color::DarkGray)),
            Span::raw(v),
        ])
    };
    let lines = vec![
        field("name", format!("{} (id {})", p.name, p.id)),
        field("pid", p.pid.map_or("-".into(), |pid| pid.to_string())),
        field("script", p.spec.script.clone()),
        field("interpreter", interpreter(p)),
        field("cwd", p.spec.cwd.clone()),
        field(
            "restart",
            format!(
                "autorestart {}, max {} unstable < {} ms, delay {} ms",
                r.autorestart, r.max_restarts, r.min_uptime_ms, r.restart_delay_ms
            ),
        ),
        field(
            "last exit",
            p.last_exit
                .as_ref()
                .map_or("-".into(), describe::exit_status),
        ),
        field(
            "created",
            format_uptime(now.saturating_sub(p.created_at)) + " ago",
        ),
    ];
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), text);
    let chart = m.charts.get(&p.id);
    let cpu_data: Vec<u64> = chart
        .into_iter()
        .flatten()
        .map(|s| (s.0 * 10.0) as u64)
        .collect();
    let mem_data: Vec<u64> = chart.into_iter().flatten().map(|s| s.1).collect();
    let title = format!(" cpu {:.1}% ", p.usage.tree_cpu);
    spark(frame, cpu, &title, &cpu_data, Color::Cyan);
    let title = format!(" memory {} ", format_bytes(p.usage.tree_memory));
    spark(frame, mem, &title, &mem_data, Color::Magenta);
}

fn spark(frame: &mut Frame, area: Rect, title: &str, data: &[u64], color: Color) {
    let width = area.width.saturating_sub(2) as usize;
    let shown = &data[data.len().saturating_sub(width)..];
    let widget = Sparkline::default()
        .block(Block::bordered().title(title.to_string()))
        .data(shown)
        .style(Style::new().fg(color));
    frame.render_widget(widget, area);
}

fn journal(frame: &mut Frame, area: Rect, m: &Monit) {
    let title = format!(" history {} ", m.focus.as_deref().unwrap_or(""));
    let height = area.height.saturating_sub(2) as usize;
    let lines: Vec<Line> = m
        .events
        .iter()
        .rev()
        .take(height)
        .map(|e| {
            let time = pmx_core::time::format_local(e.at, "%H:%M:%S");
            let instance = e.instance.map(|i| format!("#{i} ")).unwrap_or_default();
            Line::from(vec![
                Span::styled(format!("{time} "), Style::new().fg(Color::DarkGray)),
                Span::raw(format!("{instance}{}", describe::event(&e.kind))),
                Span::styled(
                    format!("  ← {}", describe::cause(&e.cause)),
                    Style::new().fg(Color::DarkGray),
                ),
            ])
        })
        .collect();
    let widget = Paragraph::new(lines).block(Block::bordered().title(title));
    frame.render_widget(widget, area);
}

fn logs(frame: &mut Frame, area: Rect, m: &Monit) {
    let title = format!(" logs {} ", m.focus.as_deref().unwrap_or(""));
    let height = area.height.saturating_sub(2) as usize;
    let start = m.logs.len().saturating_sub(height);
    let lines: Vec<Line> = m
        .logs
        .iter()
        .skip(start)
        .map(|l| {
            let style = match l.stream {
                pmx_core::logs::Stream::Err => Style::new().fg(Color::Red),
                pmx_core::logs::Stream::Out => Style::new(),
            };
            Line::from(vec![
                Span::styled(format!("{} ", l.id), Style::new().fg(Color::DarkGray)),
                Span::styled(l.text.clone(), style),
            ])
        })
        .collect();
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title)),
        area,
    );
}

fn footer(frame: &mut Frame, area: Rect, m: &Monit) {
    let text = if m.typing {
        format!("filter: {}▏ (enter: keep, esc: clear)", m.filter)
    } else {
        let filter = if m.filter.is_empty() {
            String::new()
        } else {
            format!("[filter {}] ", m.filter)
        };
        format!(
            "{filter}↑↓ select  / filter  r restart  l reload  s stop  t start  q quit   {}",
            m.status
        )
    };
    frame.render_widget(
        Paragraph::new(text).style(Style::new().fg(Color::Gray)),
        area,
    );
}

fn confirm(frame: &mut Frame, question: &str) {
    let area = frame.area();
    let width = (question.len() as u16 + 6).min(area.width);
    let popup = Rect {
        x: area.x + (area.width.saturating_sub(width)) / 2,
        y: area.y + area.height / 2 - 1,
        width,
        height: 3.min(area.height),
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(question.to_string())
            .block(Block::bordered().border_style(Style::new().fg(Color::Yellow))),
        popup,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_maximum_and_keep_the_last_values() {
        assert_eq!(bars([0.0, 50.0, 100.0].into_iter(), 10), "▁▅█");
        assert_eq!(bars([9.0, 0.0, 0.0].into_iter(), 2), "▁▁");
        assert_eq!(bars(std::iter::empty(), 5), "");
    }
}

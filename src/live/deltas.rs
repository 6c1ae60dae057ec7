//! Append-only text deltas from a live stream's events, for protocols whose clients concatenate
//! what they are sent (Wyoming's `transcript-chunk`, OpenAI's `...transcription.delta`). A
//! partial may revise words it showed before, and a sent delta cannot be taken back, so only
//! words that extend what was already sent go out; a revised stretch waits until the stream's
//! text grows past it again (at the latest, the utterance's final). The authoritative text is
//! always the finals, sent separately by each protocol.

use super::{Event, EventKind};

#[derive(Debug, Default)]
pub struct TranscriptDeltas {
    /// The finals so far, as words.
    finals: Vec<String>,
    /// Words already sent as deltas.
    sent: Vec<String>,
}

impl TranscriptDeltas {
    pub fn new() -> Self {
        Self::default()
    }

    /// The delta this event adds (with a leading space unless it is the first text), if any.
    pub fn push(&mut self, event: &Event) -> Option<String> {
        let mut words = self.finals.clone();
        words.extend(event.text.split_whitespace().map(str::to_string));
        if event.kind == EventKind::Final {
            self.finals = words.clone();
        }
        if words.len() <= self.sent.len() || words[..self.sent.len()] != self.sent[..] {
            return None;
        }
        let new = &words[self.sent.len()..];
        let delta = if self.sent.is_empty() { new.join(" ") } else { format!(" {}", new.join(" ")) };
        self.sent = words;
        Some(delta)
    }

    /// Every final's text so far, joined: the transcript of the whole stream.
    pub fn text(&self) -> String {
        self.finals.join(" ")
    }

    /// Starts a new item (OpenAI's next committed buffer): nothing sent, no finals.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind, text: &str) -> Event {
        Event { kind, text: text.into(), start: 0.0, end: 0.0, words: Vec::new() }
    }

    #[test]
    fn deltas_concatenate_to_the_text_and_never_retract() {
        let mut d = TranscriptDeltas::new();
        let mut sent = String::new();
        for (kind, text) in [
            (EventKind::Partial, "the"),
            (EventKind::Partial, "the cat"),
            (EventKind::Partial, "the cap"), // revised: nothing to send
            (EventKind::Partial, "the cat sat"),
            (EventKind::Final, "the cat sat down"),
            (EventKind::Partial, "then"),
            (EventKind::Final, "then it slept"),
        ] {
            if let Some(delta) = d.push(&event(kind, text)) {
                sent.push_str(&delta);
            }
        }
        assert_eq!(sent, "the cat sat down then it slept");
        assert_eq!(d.text(), "the cat sat down then it slept");
    }

    #[test]
    fn a_final_that_revises_sent_words_sends_nothing_but_keeps_the_text() {
        let mut d = TranscriptDeltas::new();
        assert_eq!(d.push(&event(EventKind::Partial, "whirled peas")).as_deref(), Some("whirled peas"));
        assert_eq!(d.push(&event(EventKind::Final, "world peace")), None);
        assert_eq!(d.text(), "world peace");
        d.reset();
        assert_eq!(d.push(&event(EventKind::Final, "again")).as_deref(), Some("again"));
    }
}

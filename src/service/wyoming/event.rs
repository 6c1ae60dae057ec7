//! Wyoming's framing, as the `wyoming` package (1.10) reads and writes it: a JSON header line
//! `{"type", "data"?, "data_length"?, "payload_length"?}\n`, then `data_length` bytes of JSON
//! merged over `data`, then `payload_length` bytes of payload (PCM audio). Every length is
//! bounded before anything is allocated, so a hostile header cannot make the server read
//! gigabytes.

use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// The protocol version hark writes (the package whose source it follows).
pub const VERSION: &str = "1.10.2";
/// The longest header line read.
pub const MAX_HEADER_BYTES: u64 = 64 * 1024;
/// The most additional JSON data one event may carry.
pub const MAX_DATA_BYTES: u64 = 1024 * 1024;
/// The largest payload one event may carry (8 s of 192 kHz stereo 24-bit audio).
pub const MAX_PAYLOAD_BYTES: u64 = 9 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: String,
    pub data: Map<String, Value>,
    pub payload: Vec<u8>,
}

impl Event {
    pub fn new(kind: &str, data: Value) -> Self {
        let data = match data {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        Self { kind: kind.into(), data, payload: Vec::new() }
    }

    pub fn with_payload(mut self, payload: Vec<u8>) -> Self {
        self.payload = payload;
        self
    }

    pub fn error(text: &str, code: &str) -> Self {
        Self::new("error", json!({"text": text, "code": code}))
    }

    /// A whole number in `data`, if it is one.
    pub fn int(&self, key: &str) -> Option<u64> {
        self.data.get(key).and_then(Value::as_u64)
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.data.get(key).and_then(Value::as_str)
    }

    /// The bytes on the wire: the data travels after the header (as the package writes it).
    pub fn encode(&self) -> Vec<u8> {
        let mut header = json!({"type": self.kind, "version": VERSION});
        let data =
            (!self.data.is_empty()).then(|| serde_json::to_vec(&self.data).expect("JSON values serialise"));
        if let Some(d) = &data {
            header["data_length"] = d.len().into();
        }
        if !self.payload.is_empty() {
            header["payload_length"] = self.payload.len().into();
        }
        let mut out = serde_json::to_vec(&header).expect("JSON values serialise");
        out.push(b'\n');
        out.extend(data.unwrap_or_default());
        out.extend(&self.payload);
        out
    }
}

/// Why an event could not be read; the connection cannot go on after any of them.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ReadError {
    #[error("malformed event: {0}")]
    Malformed(String),
    #[error("event too large: {0}")]
    TooLarge(String),
    #[error("the connection broke mid-event: {0}")]
    Io(String),
}

impl ReadError {
    pub fn code(&self) -> &'static str {
        match self {
            ReadError::Malformed(_) => "malformed-event",
            ReadError::TooLarge(_) => "too-large",
            ReadError::Io(_) => "io",
        }
    }
}

fn length(header: &Map<String, Value>, key: &str, limit: u64) -> Result<usize, ReadError> {
    match header.get(key) {
        None | Some(Value::Null) => Ok(0),
        Some(v) => {
            let n = v
                .as_u64()
                .ok_or_else(|| ReadError::Malformed(format!("{key} must be a whole number, not {v}")))?;
            if n > limit {
                return Err(ReadError::TooLarge(format!("{key} {n} is over the limit of {limit} bytes")));
            }
            Ok(n as usize)
        }
    }
}

/// The next event; `None` when the peer closed the connection between events.
pub async fn read_event<R: AsyncBufRead + Unpin>(reader: &mut R) -> Result<Option<Event>, ReadError> {
    let io = |e: std::io::Error| ReadError::Io(e.to_string());
    let mut line = Vec::new();
    (&mut *reader).take(MAX_HEADER_BYTES + 1).read_until(b'\n', &mut line).await.map_err(io)?;
    if line.is_empty() {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(if line.len() as u64 > MAX_HEADER_BYTES {
            ReadError::TooLarge(format!("the header line is longer than {MAX_HEADER_BYTES} bytes"))
        } else {
            ReadError::Io("the connection closed inside a header".into())
        });
    }
    let header: Value = serde_json::from_slice(&line)
        .map_err(|e| ReadError::Malformed(format!("the header is not JSON: {e}")))?;
    let Value::Object(header) = header else {
        return Err(ReadError::Malformed("the header is not a JSON object".into()));
    };
    let kind = header
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| ReadError::Malformed("the header has no \"type\" string".into()))?
        .to_string();
    let mut data = match header.get("data") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => return Err(ReadError::Malformed(format!("\"data\" must be an object, not {other}"))),
    };
    let data_length = length(&header, "data_length", MAX_DATA_BYTES)?;
    let payload_length = length(&header, "payload_length", MAX_PAYLOAD_BYTES)?;
    if data_length > 0 {
        let mut bytes = vec![0; data_length];
        reader.read_exact(&mut bytes).await.map_err(io)?;
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(extra)) => data.extend(extra),
            _ => return Err(ReadError::Malformed("the additional data is not a JSON object".into())),
        }
    }
    let mut payload = vec![0; payload_length];
    reader.read_exact(&mut payload).await.map_err(io)?;
    Ok(Some(Event { kind, data, payload }))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(bytes: &[u8]) -> Vec<Result<Option<Event>, ReadError>> {
        let mut reader = tokio::io::BufReader::new(bytes);
        let mut out = Vec::new();
        loop {
            let r = read_event(&mut reader).await;
            let stop = !matches!(r, Ok(Some(_)));
            out.push(r);
            if stop {
                return out;
            }
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    }

    #[test]
    fn events_round_trip_with_data_and_payload() {
        let chunk = Event::new("audio-chunk", json!({"rate": 16000, "width": 2, "channels": 1}))
            .with_payload(vec![1, 2, 3, 4]);
        let mut wire = chunk.encode();
        wire.extend(Event::new("audio-stop", json!({})).encode());
        let events = block_on(read_all(&wire));
        assert_eq!(events[0].as_ref().unwrap().as_ref().unwrap(), &chunk);
        assert_eq!(events[1].as_ref().unwrap().as_ref().unwrap().kind, "audio-stop");
        assert_eq!(events[2], Ok(None));
    }

    #[test]
    fn header_data_and_additional_data_are_merged() {
        let wire = b"{\"type\":\"transcribe\",\"data\":{\"language\":\"en\"},\"data_length\":14}\n{\"name\":\"x\"}  ";
        let e = block_on(read_all(wire)).remove(0).unwrap().unwrap();
        assert_eq!((e.str("language"), e.str("name")), (Some("en"), Some("x")));
    }

    #[test]
    fn bad_frames_are_named_errors() {
        let first = |wire: &[u8]| block_on(read_all(wire)).remove(0);
        assert!(matches!(first(b"not json\n"), Err(ReadError::Malformed(_))));
        assert!(matches!(first(b"{\"data\":{}}\n"), Err(ReadError::Malformed(_))));
        assert!(matches!(first(b"{\"type\":\"x\",\"payload_length\":-1}\n"), Err(ReadError::Malformed(_))));
        assert!(matches!(
            first(b"{\"type\":\"x\",\"payload_length\":99999999999}\n"),
            Err(ReadError::TooLarge(_))
        ));
        assert!(matches!(first(b"{\"type\":\"x\",\"payload_length\":10}\nabc"), Err(ReadError::Io(_))));
        assert!(matches!(first(&vec![b'{'; MAX_HEADER_BYTES as usize + 10]), Err(ReadError::TooLarge(_))));
    }
}

//! Playing a recording in the terminal (`oneport server recordings play`): the
//! output events in order, at their recorded pace divided by a speed factor.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::Duration;

use super::asciicast;

/// Longest pause played, whatever the speed: a session idle for an hour should
/// not hold the terminal for an hour.
pub const MAX_PAUSE: Duration = Duration::from_secs(5);

/// Plays `path` into `out` at `speed` (1.0 = as recorded); `None` plays without
/// pauses. Returns the number of output events written.
///
/// # Errors
/// When the file cannot be read, has no asciicast v2 header, or `out` fails.
pub async fn play(path: &Path, speed: Option<f64>, out: &mut (impl Write + ?Sized)) -> Result<u64, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut r = BufReader::new(file);
    asciicast::read_header(&mut r).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut last = 0.0f64;
    let mut played = 0;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).map_err(|e| format!("{}: {e}", path.display()))? == 0 {
            break;
        }
        // A torn last line (the server stopped mid-write) ends the playback.
        let Some(ev) = asciicast::parse_event(line.trim_end()) else { break };
        if ev.kind != "o" {
            continue;
        }
        if let Some(speed) = speed {
            let wait = ((ev.at - last).max(0.0) / speed).min(MAX_PAUSE.as_secs_f64());
            if wait > 0.0 {
                out.flush().map_err(|e| e.to_string())?;
                tokio::time::sleep(Duration::from_secs_f64(wait)).await;
            }
        }
        last = ev.at;
        out.write_all(ev.data.as_bytes()).map_err(|e| e.to_string())?;
        played += 1;
    }
    out.flush().map_err(|e| e.to_string())?;
    Ok(played)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn plays_output_at_the_recorded_pace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.cast");
        std::fs::write(
            &path,
            "{\"version\":2,\"width\":80,\"height\":24,\"timestamp\":1,\"session_id\":\"x\",\"kind\":\"exec\",\
             \"user\":\"a\",\"cluster\":\"c\",\"namespace\":\"n\",\"pod\":\"p\"}\n\
             [0.5, \"o\", \"$ \"]\n[1.0, \"i\", \"ls\\r\"]\n[3.0, \"o\", \"file\\r\\n\"]\n[4.0, \"m\", \"exit 0\"]\n[5.0, \"o\", \"tor",
        )
        .unwrap();
        let start = tokio::time::Instant::now();
        let mut out = Vec::new();
        assert_eq!(play(&path, Some(2.0), &mut out).await.unwrap(), 2);
        assert_eq!(out, b"$ file\r\n");
        assert_eq!(start.elapsed(), Duration::from_millis(1500));
        let mut out = Vec::new();
        play(&path, None, &mut out).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_millis(1500));
        std::fs::write(&path, "nope\n").unwrap();
        assert!(play(&path, None, &mut out).await.unwrap_err().contains("asciicast"));
    }
}

//! The directory sink: one asciicast file per session in the recordings directory
//! (made mode 0700 if missing), each file mode 0600, named
//! `<UTC start, YYYYmmddTHHMMSS.mmmZ>-<session id>.cast` so that names sort by time
//! and carry the session id. Also the listing behind `oneport server recordings`.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::asciicast::{self, Header, Stream, Writer};
use super::{Event, Meta, Recorder, Sink};

/// File name suffix.
pub const SUFFIX: &str = ".cast";
/// How far from the end `duration_of` looks for the last event.
const TAIL: u64 = 1 << 20;

/// Recordings as files in a directory.
#[derive(Debug, Clone)]
pub struct DirSink {
    dir: PathBuf,
}

impl DirSink {
    /// A sink writing into `dir`.
    pub fn new(dir: PathBuf) -> DirSink {
        DirSink { dir }
    }

    fn ensure_dir(&self) -> Result<(), String> {
        match std::fs::metadata(&self.dir) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(format!("{} is not a directory", self.dir.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut b = std::fs::DirBuilder::new();
                b.recursive(true);
                #[cfg(unix)]
                std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
                b.create(&self.dir)
                    .map_err(|e| format!("cannot create the recordings directory {}: {e}", self.dir.display()))
            }
            Err(e) => Err(format!("cannot use the recordings directory {}: {e}", self.dir.display())),
        }
    }

    fn open(&self, path: &Path) -> Result<File, String> {
        let mut o = OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        o.open(path).map_err(|e| format!("cannot create {}: {e}", path.display()))
    }
}

impl Sink for DirSink {
    fn describe(&self) -> String {
        format!("directory {}", self.dir.display())
    }

    fn check(&self) -> Result<(), String> {
        self.ensure_dir()?;
        let probe = self.dir.join(format!(".probe-{}", super::session::new_id()));
        self.open(&probe)?;
        let _ = std::fs::remove_file(&probe);
        Ok(())
    }

    fn create(&self, meta: &Meta, started_ms: i64) -> Result<Box<dyn Recorder>, String> {
        self.ensure_dir()?;
        let path = self.dir.join(file_name(started_ms, &meta.session_id));
        let file = self.open(&path)?;
        let writer = Writer::new(BufWriter::with_capacity(64 * 1024, file), started_ms.div_euclid(1000), meta.clone());
        Ok(Box::new(FileRecorder { path, writer }))
    }
}

/// `20261201T214800.123Z-<id>.cast` for a session that started at `timestamp_ms`
/// (Unix time in milliseconds).
pub fn file_name(timestamp_ms: i64, id: &str) -> String {
    let secs = timestamp_ms.div_euclid(1000);
    let ms = timestamp_ms.rem_euclid(1000);
    format!("{}.{ms:03}Z-{id}{SUFFIX}", crate::util::utc::format_or_epoch(secs, "", "T", ""))
}

struct FileRecorder {
    path: PathBuf,
    writer: Writer<BufWriter<File>>,
}

impl Recorder for FileRecorder {
    fn name(&self) -> String {
        self.path.display().to_string()
    }

    fn begin(&mut self, meta: &Meta) {
        self.writer.set_meta(meta.clone());
    }

    fn write(&mut self, at: Duration, event: &Event) -> std::io::Result<()> {
        match event {
            Event::Output(d) => self.writer.data(at, Stream::Output, d),
            Event::Input(d) => self.writer.data(at, Stream::Input, d),
            Event::Resize(w, h) => self.writer.resize(at, *w, *h),
            Event::End(label) => {
                self.writer.ensure_header()?;
                self.writer.marker(at, label)
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()?;
        // A file whose directory was removed takes writes without error on Unix, but
        // nobody will ever read them: one stat per flush (the recorder flushes when
        // it has caught up, not per event under load) notices.
        if let Err(e) = std::fs::metadata(&self.path) {
            let msg = format!(
                "the recording file {} is gone ({e}): was the recordings directory removed?",
                self.path.display()
            );
            return Err(std::io::Error::new(e.kind(), msg));
        }
        Ok(())
    }

    fn discard(self: Box<Self>) {
        let path = self.path.clone();
        drop(self);
        let _ = std::fs::remove_file(path);
    }
}

/// One recording in a directory, as `recordings ls` shows it.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The file.
    pub path: PathBuf,
    /// Its header.
    pub header: Header,
    /// Time of the last event, seconds.
    pub duration: f64,
    /// File size in bytes.
    pub size: u64,
}

/// Every recording in `dir`, oldest first; files that cannot be read are returned
/// as errors beside them (one bad file does not hide the others).
///
/// # Errors
/// When `dir` cannot be read.
pub fn list(dir: &Path) -> Result<Vec<Result<Listed, String>>, String> {
    let rd =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read the recordings directory {}: {e}", dir.display()))?;
    let mut names: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(SUFFIX) && !n.starts_with('.')))
        .collect();
    names.sort();
    Ok(names.into_iter().map(|p| describe(&p).map_err(|e| format!("{}: {e}", p.display()))).collect())
}

/// Reads a recording's header, duration and size.
///
/// # Errors
/// When the file cannot be read or has no asciicast v2 header.
pub fn describe(path: &Path) -> Result<Listed, String> {
    let mut f = File::open(path).map_err(|e| e.to_string())?;
    let size = f.metadata().map_err(|e| e.to_string())?.len();
    let header = asciicast::read_header(&mut BufReader::new(&mut f))?;
    let start = size.saturating_sub(TAIL);
    f.seek(SeekFrom::Start(start)).map_err(|e| e.to_string())?;
    let mut tail = Vec::new();
    f.take(TAIL).read_to_end(&mut tail).map_err(|e| e.to_string())?;
    let tail = String::from_utf8_lossy(&tail);
    let duration = tail.lines().rev().find_map(asciicast::parse_event).map(|e| e.at).unwrap_or(0.0);
    Ok(Listed { path: path.to_path_buf(), header, duration, size })
}

/// The recording in `dir` that `id` names: a session id, a unique prefix of one,
/// or a file name.
///
/// # Errors
/// When none or several match.
pub fn find(dir: &Path, id: &str) -> Result<PathBuf, String> {
    let direct = dir.join(id);
    if id.ends_with(SUFFIX) && direct.is_file() {
        return Ok(direct);
    }
    let all = list(dir)?;
    let hits: Vec<PathBuf> = all
        .into_iter()
        .filter_map(|r| r.ok())
        .filter(|l| l.header.meta.session_id.starts_with(id))
        .map(|l| l.path)
        .collect();
    match hits.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!("no recording {id:?} in {} (see `oneport server recordings ls`)", dir.display())),
        _ => Err(format!("{id:?} matches {} recordings: give more of the session id", hits.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_by_time_and_carry_the_id() {
        assert_eq!(file_name(1_764_625_680_123, "ab12"), "20251201T214800.123Z-ab12.cast");
        assert!(file_name(1_000, "z") < file_name(2_000, "a"));
    }

    #[test]
    fn files_are_private_listed_and_found() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("rec");
        let sink = DirSink::new(dir.clone());
        sink.check().unwrap();
        let meta = Meta { session_id: "0123abcd".into(), user: "alice".into(), ..Default::default() };
        let mut r = sink.create(&meta, 1_764_625_680_000).unwrap();
        r.write(Duration::from_millis(10), &Event::Resize(100, 30)).unwrap();
        r.write(Duration::from_millis(20), &Event::Output(b"hello\n".to_vec())).unwrap();
        r.write(Duration::from_millis(2500), &Event::End("exit 0".into())).unwrap();
        r.flush().unwrap();
        drop(r);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
            let f = dir.join("20251201T214800.000Z-0123abcd.cast");
            assert_eq!(std::fs::metadata(f).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::write(dir.join("junk.cast"), "not a recording").unwrap();
        let all = list(&dir).unwrap();
        assert_eq!(all.len(), 2);
        let good = all.iter().find_map(|r| r.as_ref().ok()).unwrap();
        assert_eq!((good.header.width, good.header.height), (100, 30));
        assert_eq!(good.duration, 2.5);
        assert!(all.iter().any(|r| r.as_ref().is_err_and(|e| e.contains("junk.cast"))));
        assert!(find(&dir, "0123").unwrap().ends_with("20251201T214800.000Z-0123abcd.cast"));
        assert!(find(&dir, "ffff").unwrap_err().contains("no recording"));
        let d = sink.create(&Meta { session_id: "gone".into(), ..Default::default() }, 0).unwrap();
        d.discard();
        assert_eq!(list(&dir).unwrap().len(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn an_unwritable_directory_is_a_clear_reason() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        std::fs::write(&file, "x").unwrap();
        let err = DirSink::new(file.clone()).check().unwrap_err();
        assert!(err.contains("is not a directory"), "{err}");
        let err = DirSink::new(file.join("sub")).check().unwrap_err();
        assert!(err.contains("cannot"), "{err}");
    }
}

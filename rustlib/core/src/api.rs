//! The public entry points: encrypt or decrypt a stream (any reader/writer)
//! or a file (written aside and renamed into place, resumable for v2).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::constants::*;
use crate::crypto::keys::KeyMaterial;
use crate::error::{Error, ErrorClass, Result};
use crate::headers::{StreamHeader, StreamKeys};
use crate::pipeline::Control;
use crate::recovery::checkpoint::{InputIdentity, ResumeCheckpoint, ResumeCheckpointKind};
use crate::storage::durable::{sync_parent, write_durably};
use crate::storage::RealFs;
use crate::stream_io::{read_full, Sink};
use crate::stream_v1;
use crate::stream_v2::{self, ResumeCheckpointing, ResumePoint, Run};
use crate::telemetry::{Telemetry, TelemetrySnapshot};
use crate::types::{EncryptParams, Format, ParallelismProfile};

fn write_header(output: &mut dyn Sink, header: &StreamHeader, tel: &Telemetry) -> Result<()> {
    output
        .write_all(&header.encode())
        .map_err(|e| Error::io("cannot write the output", e))?;
    tel.bytes_out
        .fetch_add(HEADER_LEN as u64, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// Read and parse the header at the start of `input`, then unlock it.
pub fn read_header(input: &mut dyn Read, key: &KeyMaterial) -> Result<(StreamHeader, StreamKeys)> {
    let mut b = [0u8; HEADER_LEN];
    let n = read_full(input, &mut b).map_err(|e| Error::io("cannot read the input", e))?;
    let header = StreamHeader::parse(&b[..n])?;
    let keys = header.unlock(key)?;
    Ok((header, keys))
}

/// Encrypt everything `input` yields onto `output`.
pub fn encrypt_stream(
    input: &mut (dyn Read + Send),
    output: &mut dyn Sink,
    key: &KeyMaterial,
    params: &EncryptParams,
    parallelism: ParallelismProfile,
    control: &Control,
) -> Result<TelemetrySnapshot> {
    let tel = Telemetry::default();
    let (header, keys) = StreamHeader::create(params, key)?;
    write_header(output, &header, &tel)?;
    encrypt_body(
        input,
        output,
        &header,
        &keys,
        params.compression,
        parallelism,
        control,
        &tel,
        None,
        None,
        None,
    )?;
    Ok(tel.snapshot())
}

#[allow(clippy::too_many_arguments)]
fn encrypt_body(
    input: &mut (dyn Read + Send),
    output: &mut dyn Sink,
    header: &StreamHeader,
    keys: &StreamKeys,
    compression: Option<i32>,
    parallelism: ParallelismProfile,
    control: &Control,
    tel: &Telemetry,
    from: Option<ResumePoint>,
    checkpoints: Option<ResumeCheckpointing<'_>>,
    source: Option<(&File, u64)>,
) -> Result<()> {
    match header.format {
        Format::V1 => stream_v1::encrypt(input, output, header, keys, control, tel),
        Format::V2 => {
            let run = Run {
                workers: parallelism.threads(),
                control,
                telemetry: tel,
                positional: None, // see `Run::positional`
                source,
            };
            let from = from.unwrap_or_else(|| ResumePoint::start(header, true));
            stream_v2::encrypt(
                input,
                output,
                header,
                keys,
                compression,
                &run,
                from,
                checkpoints,
            )
        }
    }
}

/// Decrypt a v1 or v2 stream (detected from its header) onto `output`.
pub fn decrypt_stream(
    input: &mut (dyn Read + Send),
    output: &mut dyn Sink,
    key: &KeyMaterial,
    parallelism: ParallelismProfile,
    control: &Control,
) -> Result<TelemetrySnapshot> {
    let tel = Telemetry::default();
    let (header, keys) = read_header(input, key)?;
    decrypt_body(
        input,
        output,
        &header,
        &keys,
        parallelism,
        control,
        &tel,
        None,
        None,
        None,
    )?;
    Ok(tel.snapshot())
}

#[allow(clippy::too_many_arguments)]
fn decrypt_body(
    input: &mut (dyn Read + Send),
    output: &mut dyn Sink,
    header: &StreamHeader,
    keys: &StreamKeys,
    parallelism: ParallelismProfile,
    control: &Control,
    tel: &Telemetry,
    from: Option<ResumePoint>,
    checkpoints: Option<ResumeCheckpointing<'_>>,
    positional: Option<&File>,
) -> Result<()> {
    tel.bytes_in
        .fetch_add(HEADER_LEN as u64, std::sync::atomic::Ordering::Relaxed);
    match header.format {
        Format::V1 => stream_v1::decrypt(input, output, header, keys, control, tel),
        Format::V2 => {
            let run = Run {
                workers: parallelism.threads(),
                control,
                telemetry: tel,
                positional,
                source: None,
            };
            let from = from.unwrap_or_else(|| ResumePoint::start(header, false));
            stream_v2::decrypt(input, output, header, keys, &run, from, checkpoints)
        }
    }
}

/// The side files of an output path: the partial output and its resume
/// checkpoint.
pub struct SideFiles {
    pub part: PathBuf,
    pub checkpoint: PathBuf,
}

impl SideFiles {
    pub fn of(dst: &Path) -> Self {
        let with = |suffix: &str| {
            let mut s = dst.as_os_str().to_owned();
            s.push(suffix);
            PathBuf::from(s)
        };
        SideFiles {
            part: with(".fusefs-part"),
            checkpoint: with(".fusefs-ckpt"),
        }
    }

    fn remove(&self) {
        let _ = fs::remove_file(&self.part);
        let _ = fs::remove_file(&self.checkpoint);
    }
}

fn open_input(src: &Path, control: &Control) -> Result<(File, InputIdentity)> {
    let f = File::open(src)
        .map_err(|e| Error::io_path(format!("cannot open input {}", src.display()), src, e))?;
    let meta = f
        .metadata()
        .map_err(|e| Error::io_path(format!("cannot stat input {}", src.display()), src, e))?;
    if meta.is_dir() {
        return Err(Error::io_path(
            format!("cannot read input {}", src.display()),
            src,
            std::io::Error::from_raw_os_error(21),
        ));
    }
    control.set_total(meta.len());
    Ok((f, InputIdentity::of(&meta)))
}

fn create_part(side: &SideFiles) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&side.part)
        .map_err(|e| {
            Error::io_path(
                format!("cannot create output {}", side.part.display()),
                &side.part,
                e,
            )
        })
}

/// Open the partial output of an interrupted run and cut it back to `offset`.
fn reopen_part(side: &SideFiles, offset: u64) -> Result<File> {
    let err = |e| {
        Error::io_path(
            format!("cannot reopen {}", side.part.display()),
            &side.part,
            e,
        )
    };
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&side.part)
        .map_err(err)?;
    let len = f.metadata().map_err(err)?.len();
    if len < offset {
        return Err(Error::Resume(format!(
            "{} holds {len} bytes but the checkpoint needs {offset}",
            side.part.display()
        )));
    }
    f.set_len(offset).map_err(err)?;
    f.seek(SeekFrom::Start(offset)).map_err(err)?;
    Ok(f)
}

fn load_checkpoint(
    side: &SideFiles,
    keys: &StreamKeys,
    header: &StreamHeader,
    kind: ResumeCheckpointKind,
    input: InputIdentity,
) -> Result<ResumeCheckpoint> {
    let bytes = fs::read(&side.checkpoint).map_err(|e| {
        Error::Resume(format!(
            "no checkpoint to resume from ({}: {})",
            side.checkpoint.display(),
            crate::error::describe_io(&e)
        ))
    })?;
    let c = ResumeCheckpoint::decode(&bytes, &keys.checkpoint_mac)?;
    if c.kind != kind || c.stream_id != header.stream_id || c.segment_size != header.segment_size {
        return Err(Error::Resume(
            "the checkpoint belongs to another run".into(),
        ));
    }
    if c.input != input {
        return Err(Error::Resume(
            "the input changed since the interrupted run".into(),
        ));
    }
    Ok(c)
}

/// A second handle on the partial output for the workers' positional writes.
fn clone_handle(out: &File, side: &SideFiles) -> Result<File> {
    out.try_clone().map_err(|e| {
        Error::io_path(
            format!("cannot reopen {}", side.part.display()),
            &side.part,
            e,
        )
    })
}

/// Where an interrupted v2 run stands: the checkpoint checked against this
/// stream and input, the partial output cut back to it, the input positioned.
#[allow(clippy::too_many_arguments)]
fn resume_point(
    side: &SideFiles,
    keys: &StreamKeys,
    header: &StreamHeader,
    kind: ResumeCheckpointKind,
    identity: InputIdentity,
    input: &mut File,
    src: &Path,
    control: &Control,
) -> Result<(File, ResumePoint)> {
    if header.format != Format::V2 {
        return Err(Error::Resume("only v2 streams can be resumed".into()));
    }
    let c = load_checkpoint(side, keys, header, kind, identity)?;
    let out = reopen_part(side, c.point.output_offset)?;
    input
        .seek(SeekFrom::Start(c.point.input_offset))
        .map_err(|e| Error::io_path("cannot seek the input", src, e))?;
    control.set_done(c.point.input_offset);
    Ok((out, c.point))
}

/// Writes a run's checkpoints durably next to its partial output.
fn checkpoint_recorder<'a>(
    kind: ResumeCheckpointKind,
    header: &'a StreamHeader,
    keys: &'a StreamKeys,
    identity: InputIdentity,
    side: &'a SideFiles,
) -> impl FnMut(&ResumePoint) -> Result<()> + 'a {
    move |p| {
        let c = ResumeCheckpoint {
            kind,
            stream_id: header.stream_id,
            segment_size: header.segment_size,
            point: *p,
            input: identity,
        };
        write_durably(&RealFs, &side.checkpoint, &c.encode(&keys.checkpoint_mac))
    }
}

/// Finish a file run: sync, drop the checkpoint, rename into place, sync the directory.
fn commit(mut part: File, side: &SideFiles, dst: &Path) -> Result<()> {
    part.sync().map_err(|e| {
        Error::io_path(
            format!("cannot sync {}", side.part.display()),
            &side.part,
            e,
        )
    })?;
    drop(part);
    let _ = fs::remove_file(&side.checkpoint);
    fs::rename(&side.part, dst)
        .map_err(|e| Error::io_path(format!("cannot rename into {}", dst.display()), dst, e))?;
    sync_parent(&RealFs, dst)
}

/// What a failed run leaves of `dst.fusefs-part` and `dst.fusefs-ckpt`. A
/// run that was not resuming removes them unless an I/O error or a
/// cancellation left a checkpoint to resume from. A resumed run never
/// removes them, whatever ended it: its side files are the work of an
/// earlier run, and a refusal (the wrong IN, a wrong password, a damaged
/// checkpoint) must not destroy what the right invocation could still
/// continue; giving them up is the user's choice (`--force`).
fn cleanup_on_error(side: &SideFiles, err: &Error, resuming: bool) {
    let keep = resuming
        || match err.class() {
            ErrorClass::Io | ErrorClass::Cancelled => side.checkpoint.exists(),
            _ => false,
        };
    if !keep {
        side.remove();
    }
}

fn checkpoint_every(header: &StreamHeader, bytes: u64) -> u64 {
    if bytes == 0 {
        0
    } else {
        (bytes / header.segment_size as u64).max(1)
    }
}

/// Encrypt file `src` into `dst`. The output is built in `dst.fusefs-part`
/// and renamed over `dst` only when complete; v2 runs leave checkpoints so
/// an interrupted run continues with `resume = true`.
pub fn encrypt_file(
    src: &Path,
    dst: &Path,
    key: &KeyMaterial,
    params: &EncryptParams,
    parallelism: ParallelismProfile,
    resume: bool,
    control: &Control,
) -> Result<TelemetrySnapshot> {
    params.validate()?;
    let side = SideFiles::of(dst);
    let (mut input, identity) = open_input(src, control)?;
    let tel = Telemetry::default();
    let result = (|| {
        let (header, keys, mut out, from, compression) = if resume {
            let mut part = File::open(&side.part).map_err(|e| {
                Error::Resume(format!(
                    "no partial output to resume ({}: {})",
                    side.part.display(),
                    crate::error::describe_io(&e)
                ))
            })?;
            let (header, keys) = read_header(&mut part, key)?;
            let (out, point) = resume_point(
                &side,
                &keys,
                &header,
                ResumeCheckpointKind::Encrypt,
                identity,
                &mut input,
                src,
                control,
            )?;
            let compression = header
                .compressed()
                .then(|| params.compression.unwrap_or(DEFAULT_ZSTD_LEVEL));
            (header, keys, out, Some(point), compression)
        } else {
            let (header, keys) = StreamHeader::create(params, key)?;
            let mut out = create_part(&side)?;
            write_header(&mut out, &header, &tel)?;
            (header, keys, out, None, params.compression)
        };
        let every = checkpoint_every(&header, params.checkpoint_bytes);
        let mut record = checkpoint_recorder(
            ResumeCheckpointKind::Encrypt,
            &header,
            &keys,
            identity,
            &side,
        );
        let ck = (every > 0).then_some(ResumeCheckpointing {
            every_segments: every,
            record: &mut record,
        });
        let source = input
            .try_clone()
            .map_err(|e| Error::io_path("cannot reopen the input", src, e))?;
        encrypt_body(
            &mut input,
            &mut out,
            &header,
            &keys,
            compression,
            parallelism,
            control,
            &tel,
            from,
            ck,
            Some((&source, identity.size)),
        )?;
        commit(out, &side, dst)
    })();
    result
        .map(|()| tel.snapshot())
        .inspect_err(|e| cleanup_on_error(&side, e, resume))
}

/// Decrypt file `src` into `dst`; plaintext reaches `dst` only after the
/// whole stream authenticated. v2 runs are resumable like [`encrypt_file`],
/// with a checkpoint about every `checkpoint_bytes` of input (0: none).
pub fn decrypt_file(
    src: &Path,
    dst: &Path,
    key: &KeyMaterial,
    parallelism: ParallelismProfile,
    resume: bool,
    checkpoint_bytes: u64,
    control: &Control,
) -> Result<TelemetrySnapshot> {
    let side = SideFiles::of(dst);
    let (mut input, identity) = open_input(src, control)?;
    let tel = Telemetry::default();
    let result = (|| {
        let (header, keys) = read_header(&mut input, key)?;
        let (mut out, from) = if resume {
            let (out, point) = resume_point(
                &side,
                &keys,
                &header,
                ResumeCheckpointKind::Decrypt,
                identity,
                &mut input,
                src,
                control,
            )?;
            (out, Some(point))
        } else {
            (create_part(&side)?, None)
        };
        let every = checkpoint_every(&header, checkpoint_bytes);
        let mut record = checkpoint_recorder(
            ResumeCheckpointKind::Decrypt,
            &header,
            &keys,
            identity,
            &side,
        );
        let ck = (header.format == Format::V2 && every > 0).then_some(ResumeCheckpointing {
            every_segments: every,
            record: &mut record,
        });
        let positional = clone_handle(&out, &side)?;
        decrypt_body(
            &mut input,
            &mut out,
            &header,
            &keys,
            parallelism,
            control,
            &tel,
            from,
            ck,
            Some(&positional),
        )?;
        commit(out, &side, dst)
    })();
    result
        .map(|()| tel.snapshot())
        .inspect_err(|e| cleanup_on_error(&side, e, resume))
}

//! One recording as its room holds it: the room's side of the recorder. It keeps the
//! recording's clock (the frames of the mix handed over, one per tick while anyone is in the
//! room), who is in it, the speech timeline, and each participant's track; everything reaches
//! the recorder thread through `try_send` and never waits (a full channel drops and counts).
//!
//! Participants are known by keys the room chooses (one per membership); a participant who
//! leaves and comes back is a new member with a new track.

use crate::archive::names::unix_time_us;
use crate::archive::recorder::{Ledger, Message, Opening, TrackPacket};
use crate::archive::timeline::SpeechTimeline;
use crate::archive::track::TrackOpening;
use crate::log;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::{Duration, Instant};

/// What one member did in one tick, as the mixer saw it.
#[derive(Debug, Default)]
pub struct Voiced {
    /// The room's key of the member (see [`RecordingHandle::join`]).
    pub key: u64,
    /// Its speech gate is open in this frame.
    pub speaking: bool,
    /// This frame was loud enough to open the gate.
    pub loud: bool,
    /// The Opus packets that began playing in this frame (empty unless it has a track).
    pub packets: Vec<Vec<u8>>,
}

struct Member {
    user_id: u64,
    track: Option<TrackHandle>,
}

/// A member's track: its number in the recording, its opening until a message carried it, and
/// what the full channel dropped.
struct TrackHandle {
    number: u64,
    opening: Option<Box<TrackOpening>>,
    dropped: u64,
}

/// One recording, held by its room.
pub struct RecordingHandle {
    id: u64,
    room_id: String,
    rate: u32,
    sender: SyncSender<Message>,
    opening: Option<Box<Opening>>,
    dropped: Arc<AtomicU64>,
    dropped_here: u64,
    ledger: Arc<Ledger>,
    /// Frames handed over so far, dropped ones included: the recording's clock.
    frames: u64,
    members: HashMap<u64, Member>,
    speech: SpeechTimeline,
    tracks_started: u64,
    /// Track ends the full channel refused: tried again every tick, and sent with the finish.
    unsent_ends: Vec<(u64, u64)>,
}

impl RecordingHandle {
    pub(super) fn new(
        id: u64,
        opening: Opening,
        sender: SyncSender<Message>,
        dropped: Arc<AtomicU64>,
        ledger: Arc<Ledger>,
    ) -> Self {
        RecordingHandle {
            id,
            room_id: opening.room_id.clone(),
            rate: opening.rate,
            sender,
            opening: Some(Box::new(opening)),
            dropped,
            dropped_here: 0,
            ledger,
            frames: 0,
            members: HashMap::new(),
            speech: SpeechTimeline::default(),
            tracks_started: 0,
            unsent_ends: Vec::new(),
        }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// A participant is in the room from now on, known by `key` until it leaves; with `track`
    /// its own audio is recorded to a file of its own.
    pub fn join(&mut self, key: u64, user_id: u64, display: Option<String>, track: bool) {
        self.leave(key);
        let track = track.then(|| {
            self.tracks_started += 1;
            TrackHandle {
                number: self.tracks_started,
                opening: Some(Box::new(TrackOpening {
                    room_id: self.room_id.clone(),
                    user_id,
                    display,
                    rate: self.rate,
                    time_us: unix_time_us(),
                })),
                dropped: 0,
            }
        });
        self.members.insert(key, Member { user_id, track });
    }

    /// The participant left: its speech segment ends and its track is closed.
    pub fn leave(&mut self, key: u64) {
        self.speech.close(key);
        let Some(member) = self.members.remove(&key) else {
            return;
        };
        if let Some(track) = member.track {
            self.unsent_ends.push((track.number, track.dropped));
            self.send_ends();
        }
    }

    /// Hands one frame of the mix to the recorder; never blocks.
    pub fn write(&mut self, pcm: Vec<i16>) {
        self.write_tick(pcm, Vec::new());
    }

    /// One tick: the frame of the mix, and what each member did in it (speech, packets played);
    /// never blocks.
    pub fn write_tick(&mut self, pcm: Vec<i16>, voices: Vec<Voiced>) {
        let frame = self.frames;
        self.frames += 1;
        self.send_samples(pcm);
        if !self.unsent_ends.is_empty() {
            self.send_ends();
        }
        let mut packets = Vec::new();
        for voiced in voices {
            let Some(member) = self.members.get_mut(&voiced.key) else {
                continue; // it left during the tick
            };
            self.speech.observe(
                voiced.key,
                member.user_id,
                frame,
                voiced.speaking,
                voiced.loud,
            );
            if let Some(track) = &mut member.track {
                for payload in voiced.packets {
                    packets.push(TrackPacket {
                        number: track.number,
                        opening: track.opening.take(),
                        payload,
                    });
                }
            }
        }
        if !packets.is_empty() {
            self.send_packets(frame, packets);
        }
    }

    /// The tick's packets, in one message; when the channel is full they are dropped, counted
    /// by their tracks, which keep their openings for a later message.
    fn send_packets(&mut self, frame: u64, packets: Vec<TrackPacket>) {
        let message = Message::Packets {
            id: self.id,
            frame,
            packets,
        };
        let Err(TrySendError::Full(Message::Packets { packets, .. })) =
            self.sender.try_send(message)
        else {
            return;
        };
        for packet in packets {
            let track = self
                .members
                .values_mut()
                .filter_map(|m| m.track.as_mut())
                .find(|t| t.number == packet.number);
            if let Some(track) = track {
                track.dropped += 1;
                if packet.opening.is_some() {
                    track.opening = packet.opening;
                }
            }
        }
    }

    fn send_samples(&mut self, pcm: Vec<i16>) {
        let message = Message::Samples {
            id: self.id,
            opening: self.opening.take(),
            pcm,
        };
        match self.sender.try_send(message) {
            Ok(()) => {}
            Err(TrySendError::Full(Message::Samples { opening, .. })) => {
                self.opening = opening;
                self.dropped_here += 1;
                let dropped = self.dropped.fetch_add(1, Relaxed) + 1;
                if dropped.is_power_of_two() {
                    log!(
                        Warn,
                        "Recorder is behind the disk: {dropped} frames dropped so far"
                    );
                }
            }
            Err(_) => {}
        }
    }

    fn send_ends(&mut self) {
        while let Some(&(number, dropped_packets)) = self.unsent_ends.last() {
            let end = Message::TrackEnd {
                track: (self.id, number),
                dropped_packets,
            };
            if let Err(TrySendError::Full(_)) = self.sender.try_send(end) {
                return;
            }
            self.unsent_ends.pop();
        }
    }

    /// Closes the recording (and every track still open) and has its job file written. Blocks
    /// while the channel is full, so call it with no lock held.
    pub fn finish(mut self) {
        let message = self.finish_message();
        let _ = self.sender.send(message);
    }

    /// Like `finish`, but gives up at `deadline` if the channel stays full (shutdown): the
    /// recorder's `stop` then writes the job file itself.
    pub fn finish_by(mut self, deadline: Instant) {
        let mut message = self.finish_message();
        loop {
            match self.sender.try_send(message) {
                Err(TrySendError::Full(again)) if Instant::now() < deadline => {
                    message = again;
                    std::thread::sleep(Duration::from_millis(5));
                }
                _ => return,
            }
        }
    }

    /// The finish, with the tracks still open; the speech timeline goes straight to the ledger,
    /// so that a job `stop` has to write itself has it too.
    fn finish_message(&mut self) -> Message {
        let speech = self.speech.finish();
        if let Some(entry) = self.ledger.lock().get_mut(&self.id) {
            entry.speech = speech;
        }
        let mut tracks = std::mem::take(&mut self.unsent_ends);
        tracks.extend(
            self.members
                .drain()
                .filter_map(|(_, m)| m.track)
                .map(|t| (t.number, t.dropped)),
        );
        Message::Finish {
            id: self.id,
            opening: self.opening.clone(),
            dropped_frames: self.dropped_here,
            tracks,
        }
    }
}

//! The plugin-wide services every room uses: the recorder, the mixer threads and the path of
//! events. Rooms hold them rather than reaching up to the plugin.

use crate::archive::recorder::Recorder;
use crate::conference::events::Events;
use crate::media::announcement_reader::AnnouncementReader;
use crate::mixer::pool::MixerPool;
use std::sync::Arc;

pub struct Services {
    pub recorder: Recorder,
    pub mixers: MixerPool,
    pub events: Arc<Events>,
    /// Reads playing announcements ahead of the mixer.
    pub announcements: AnnouncementReader,
}

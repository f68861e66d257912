//! The registry of rooms by string id.

use crate::errors::{ApiError, ApiResult, ErrorCode};
use crate::room::Room;
use crate::sync::lock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct Rooms {
    by_id: Mutex<HashMap<String, Arc<Room>>>,
}

impl Rooms {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a room; 486 when the id is taken.
    pub fn insert(&self, room: Arc<Room>) -> ApiResult<Arc<Room>> {
        let mut rooms = lock(&self.by_id);
        if rooms.contains_key(&room.id) {
            return Err(ApiError::new(
                ErrorCode::RoomExists,
                format!("Room {} already exists", room.id),
            ));
        }
        rooms.insert(room.id.clone(), room.clone());
        Ok(room)
    }

    pub fn get(&self, id: &str) -> Option<Arc<Room>> {
        lock(&self.by_id).get(id).cloned()
    }

    /// The room, or 485.
    pub fn find(&self, id: &str) -> ApiResult<Arc<Room>> {
        self.get(id).ok_or_else(|| ApiError::no_such_room(id))
    }

    pub fn contains(&self, id: &str) -> bool {
        lock(&self.by_id).contains_key(id)
    }

    pub fn remove(&self, id: &str) -> Option<Arc<Room>> {
        lock(&self.by_id).remove(id)
    }

    /// Every room, ordered by id.
    pub fn all(&self) -> Vec<Arc<Room>> {
        let mut rooms: Vec<Arc<Room>> = lock(&self.by_id).values().cloned().collect();
        rooms.sort_by(|a, b| a.id.cmp(&b.id));
        rooms
    }

    /// Empties the registry (plugin shutdown); the rooms are returned to be finished.
    pub fn drain(&self) -> Vec<Arc<Room>> {
        lock(&self.by_id).drain().map(|(_, room)| room).collect()
    }
}

//! The registry of rooms by string id.

use crate::conference::room::Room;
use crate::locks::{OrderedMutex, Rank};
use std::collections::HashMap;
use std::sync::Arc;

pub struct Rooms {
    by_id: OrderedMutex<HashMap<String, Arc<Room>>>,
}

impl Default for Rooms {
    fn default() -> Self {
        Rooms {
            by_id: OrderedMutex::new(Rank::Rooms, "rooms", HashMap::new()),
        }
    }
}

impl Rooms {
    /// Registers a room; gives it back when its id is taken.
    pub fn insert(&self, room: Arc<Room>) -> Result<Arc<Room>, Arc<Room>> {
        let mut rooms = self.by_id.lock();
        if rooms.contains_key(&room.id) {
            return Err(room);
        }
        rooms.insert(room.id.clone(), room.clone());
        drop(rooms);
        Ok(room)
    }

    pub fn get(&self, id: &str) -> Option<Arc<Room>> {
        self.by_id.lock().get(id).cloned()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.by_id.lock().contains_key(id)
    }

    pub fn remove(&self, id: &str) -> Option<Arc<Room>> {
        self.by_id.lock().remove(id)
    }

    /// Every room, ordered by id.
    pub fn all(&self) -> Vec<Arc<Room>> {
        let mut rooms: Vec<Arc<Room>> = self.by_id.lock().values().cloned().collect();
        rooms.sort_by(|a, b| a.id.cmp(&b.id));
        rooms
    }

    /// Empties the registry (plugin shutdown); the rooms are returned to be finished.
    pub fn drain(&self) -> Vec<Arc<Room>> {
        self.by_id.lock().drain().map(|(_, room)| room).collect()
    }
}

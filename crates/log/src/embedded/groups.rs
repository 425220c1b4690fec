//! Consumer groups of the embedded log: in-process membership, range
//! assignment, and committed offsets persisted per group.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use tokio::sync::{mpsc, watch};

use super::partition::TopicState;
use super::recovery::write_durably;
use crate::error::{LogError, Result};
use crate::port::{GroupEvent, GroupMember, StartAt};
use crate::record::Record;

/// How many records a member reads from a partition per wake-up at most.
const BATCH: usize = 256;

type Offsets = BTreeMap<(String, u32), u64>;
/// A member as the group sees it: its id and where its shares go.
type MemberSlot = (u64, mpsc::UnboundedSender<Vec<u32>>);

#[derive(Debug)]
pub(crate) struct Groups {
    dir: PathBuf,
    state: Arc<Mutex<HashMap<String, Group>>>,
}

#[derive(Debug, Default)]
struct Group {
    /// Members per topic, in join order: (member id, assignment channel).
    members: BTreeMap<String, Vec<MemberSlot>>,
    offsets: Offsets,
    next_member: u64,
}

impl Groups {
    pub fn open(dir: PathBuf) -> Result<Groups> {
        fs::create_dir_all(&dir).map_err(|e| LogError::io("create directory", &dir, e))?;
        Ok(Groups {
            dir,
            state: Arc::default(),
        })
    }

    pub fn join(
        &self,
        group: &str,
        topic: Arc<TopicState>,
        start: StartAt,
    ) -> Result<EmbeddedMember> {
        let mut groups = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !groups.contains_key(group) {
            let offsets = load_offsets(&self.offsets_path(group))?;
            groups.insert(
                group.to_owned(),
                Group {
                    offsets,
                    ..Group::default()
                },
            );
        }
        let state = groups.get_mut(group).expect("inserted above");
        let id = state.next_member;
        state.next_member += 1;
        let (tx, rx) = mpsc::unbounded_channel();
        state
            .members
            .entry(topic.name.clone())
            .or_default()
            .push((id, tx));
        rebalance(state, &topic.name, topic.partitions.len() as u32);
        Ok(EmbeddedMember {
            id,
            group: group.to_owned(),
            topic: Arc::clone(&topic),
            appended: topic.appended.subscribe(),
            start,
            assignments: rx,
            assigned: Vec::new(),
            positions: HashMap::new(),
            pending: VecDeque::new(),
            groups: Groups {
                dir: self.dir.clone(),
                state: Arc::clone(&self.state),
            },
            left: false,
        })
    }

    fn offsets_path(&self, group: &str) -> PathBuf {
        self.dir.join(format!("{group}.offsets"))
    }
}

/// Splits the partitions into contiguous ranges over the members in join
/// order and tells every member its new share.
fn rebalance(group: &mut Group, topic: &str, partitions: u32) {
    let Some(members) = group.members.get(topic) else {
        return;
    };
    let n = members.len() as u32;
    for (i, (_, tx)) in members.iter().enumerate() {
        let i = i as u32;
        let share: Vec<u32> = (0..partitions)
            .filter(|p| p * n / partitions == i)
            .collect();
        let _ = tx.send(share);
    }
}

fn load_offsets(path: &PathBuf) -> Result<Offsets> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Offsets::new()),
        Err(e) => return Err(LogError::io("read offsets", path, e)),
    };
    let mut offsets = Offsets::new();
    for (line_no, line) in text.lines().enumerate() {
        let mut fields = line.split('\t');
        let parsed = (|| {
            let topic = fields.next()?.to_owned();
            let partition = fields.next()?.parse().ok()?;
            let offset = fields.next()?.parse().ok()?;
            Some(((topic, partition), offset))
        })();
        let (key, offset) = parsed.ok_or_else(|| LogError::Corrupt {
            file: path.clone(),
            position: line_no as u64,
            reason: "expected topic<TAB>partition<TAB>offset".into(),
        })?;
        offsets.insert(key, offset);
    }
    Ok(offsets)
}

/// A member of an embedded consumer group, on one topic.
#[derive(Debug)]
pub(crate) struct EmbeddedMember {
    id: u64,
    group: String,
    topic: Arc<TopicState>,
    appended: watch::Receiver<u64>,
    start: StartAt,
    assignments: mpsc::UnboundedReceiver<Vec<u32>>,
    assigned: Vec<u32>,
    /// The next offset to deliver per assigned partition, once known.
    positions: HashMap<u32, u64>,
    pending: VecDeque<GroupEvent>,
    groups: Groups,
    left: bool,
}

impl EmbeddedMember {
    fn apply(&mut self, share: Vec<u32>) {
        let revoked: Vec<u32> = self
            .assigned
            .iter()
            .copied()
            .filter(|p| !share.contains(p))
            .collect();
        let added: Vec<u32> = share
            .iter()
            .copied()
            .filter(|p| !self.assigned.contains(p))
            .collect();
        self.pending
            .retain(|e| !matches!(e, GroupEvent::Record(r) if revoked.contains(&r.partition)));
        for p in &revoked {
            self.positions.remove(p);
        }
        if !revoked.is_empty() {
            self.pending.push_back(GroupEvent::Revoked(revoked));
        }
        if !added.is_empty() {
            self.pending.push_back(GroupEvent::Assigned(added));
        }
        self.assigned = share;
    }

    /// Where a newly held partition resumes: the group's committed offset,
    /// read when the member first reads it (so a commit by the previous
    /// holder after the move still counts), else `start`.
    fn position(&mut self, partition: u32) -> Result<u64> {
        if let Some(&p) = self.positions.get(&partition) {
            return Ok(p);
        }
        let committed = {
            let groups = self
                .groups
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            groups[&self.group]
                .offsets
                .get(&(self.topic.name.clone(), partition))
                .copied()
        };
        let state = self.topic.partition(partition)?;
        let p = match committed {
            Some(offset) => state
                .resolve(StartAt::Offset(offset))
                .or_else(|_| state.resolve(StartAt::Earliest))?,
            None => state.resolve(self.start)?,
        };
        self.positions.insert(partition, p);
        Ok(p)
    }

    fn fill(&mut self) -> Result<()> {
        for partition in self.assigned.clone() {
            let next = self.position(partition)?;
            let state = Arc::clone(self.topic.partition(partition)?);
            if next < state.offsets().end {
                let records: Vec<Record> = state.read(next, BATCH)?;
                self.positions
                    .insert(partition, next + records.len() as u64);
                self.pending
                    .extend(records.into_iter().map(GroupEvent::Record));
            }
        }
        Ok(())
    }

    fn leave_now(&mut self) {
        if self.left {
            return;
        }
        self.left = true;
        let mut groups = self
            .groups
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(group) = groups.get_mut(&self.group) {
            if let Some(members) = group.members.get_mut(&self.topic.name) {
                members.retain(|(id, _)| *id != self.id);
            }
            rebalance(group, &self.topic.name, self.topic.partitions.len() as u32);
        }
    }
}

#[async_trait]
impl GroupMember for EmbeddedMember {
    async fn next(&mut self) -> Result<GroupEvent> {
        loop {
            while let Ok(share) = self.assignments.try_recv() {
                self.apply(share);
            }
            if let Some(event) = self.pending.pop_front() {
                return Ok(event);
            }
            self.appended.borrow_and_update();
            self.fill()?;
            if !self.pending.is_empty() {
                continue;
            }
            tokio::select! {
                share = self.assignments.recv() => match share {
                    Some(share) => self.apply(share),
                    None => return Err(LogError::Closed { reason: "group closed".into() }),
                },
                changed = self.appended.changed() => changed
                    .map_err(|_| LogError::Closed { reason: "topic closed".into() })?,
            }
        }
    }

    async fn commit(&mut self, partition: u32, next_offset: u64) -> Result<()> {
        self.topic.partition(partition)?;
        let mut groups = self
            .groups
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let group = groups
            .get_mut(&self.group)
            .expect("a member's group exists");
        group
            .offsets
            .insert((self.topic.name.clone(), partition), next_offset);
        let text: String = group
            .offsets
            .iter()
            .map(|((topic, p), offset)| format!("{topic}\t{p}\t{offset}\n"))
            .collect();
        write_durably(&self.groups.offsets_path(&self.group), text.as_bytes())
    }

    fn assignment(&self) -> Vec<u32> {
        self.assigned.clone()
    }

    async fn leave(mut self: Box<Self>) -> Result<()> {
        self.leave_now();
        Ok(())
    }
}

impl Drop for EmbeddedMember {
    fn drop(&mut self) {
        self.leave_now();
    }
}

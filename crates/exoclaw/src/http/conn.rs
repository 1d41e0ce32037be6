//! The connection table: every open client connection has a slot, and the
//! table bounds what strangers can make the gateway hold.
//!
//! - **Total** connections (`gateway.max_connections`) and connections
//!   **per client address** (`gateway.max_connections_per_ip`; a trusted
//!   proxy's address is exempt, it carries many clients).
//! - Connections that have **not yet authenticated** (no request with a
//!   valid credential yet, or a WebSocket before its `connect`), in all
//!   (`gateway.max_unauthenticated`) and per address
//!   (`gateway.max_unauthenticated_per_ip`).
//!
//! When a new connection would pass a limit, the **oldest unauthenticated**
//! connection in the way (of the same address for a per-address limit) is
//! closed to make room; only when every connection in the way has
//! authenticated is the newcomer refused (`503`). So a flood of idle or
//! half-sent connections only ever displaces itself: a health check or an
//! authenticated client always gets a slot, and authenticated connections
//! are never displaced. A slot is released when the last holder of its
//! [`ConnSlot`] goes (the HTTP connection, and a WebSocket served on it).

use exoclaw_core::sparse::ShrinkWhenSparse as _;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio_util::sync::CancellationToken;

/// The limits of the table (see the module docs).
#[derive(Clone, Debug)]
pub struct ConnLimits {
    pub max_total: usize,
    pub max_per_ip: usize,
    pub max_unauthenticated: usize,
    pub max_unauthenticated_per_ip: usize,
    /// Addresses exempt from the per-address limits (trusted proxies).
    pub exempt: Vec<IpAddr>,
}

/// Why a connection was refused or displaced (the metrics label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Total,
    PerIp,
    Unauthenticated,
    UnauthenticatedPerIp,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Total => "total",
            Limit::PerIp => "per_ip",
            Limit::Unauthenticated => "unauthenticated",
            Limit::UnauthenticatedPerIp => "unauthenticated_per_ip",
        }
    }
}

/// What the table did to make room, for the caller to count.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Admission {
    pub evicted: Vec<Limit>,
}

struct Entry {
    ip: IpAddr,
    authenticated: bool,
    /// Cancelled when the connection is displaced.
    evict: CancellationToken,
}

#[derive(Default)]
struct PerIp {
    total: usize,
    /// Unauthenticated connections of the address, oldest first (ids grow).
    unauthenticated: BTreeSet<u64>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    entries: HashMap<u64, Entry>,
    /// Every unauthenticated connection, oldest first.
    unauthenticated: BTreeSet<u64>,
    per_ip: HashMap<IpAddr, PerIp>,
}

/// The table (one per server).
pub struct ConnTable {
    limits: ConnLimits,
    state: Mutex<State>,
    /// Cancelled when the server shuts down: WebSockets say "going away".
    shutdown: CancellationToken,
}

impl ConnTable {
    pub fn new(limits: ConnLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            state: Mutex::new(State::default()),
            shutdown: CancellationToken::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for a new connection from `ip`, making room by displacing the
    /// oldest unauthenticated connections in the way; `Err` names the limit
    /// that only authenticated connections fill.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<(Arc<ConnSlot>, Admission), Limit> {
        let mut admission = Admission::default();
        let mut st = self.lock();
        let exempt = self.limits.exempt.contains(&ip);
        if !exempt {
            let (total, unauth) = st
                .per_ip
                .get(&ip)
                .map_or((0, 0), |p| (p.total, p.unauthenticated.len()));
            if total >= self.limits.max_per_ip {
                if !evict_oldest(&mut st, Some(ip)) {
                    return Err(Limit::PerIp);
                }
                admission.evicted.push(Limit::PerIp);
            } else if unauth >= self.limits.max_unauthenticated_per_ip {
                evict_oldest(&mut st, Some(ip));
                admission.evicted.push(Limit::UnauthenticatedPerIp);
            }
        }
        if st.unauthenticated.len() >= self.limits.max_unauthenticated {
            evict_oldest(&mut st, None);
            admission.evicted.push(Limit::Unauthenticated);
        }
        if st.entries.len() >= self.limits.max_total {
            if !evict_oldest(&mut st, None) {
                return Err(Limit::Total);
            }
            admission.evicted.push(Limit::Total);
        }
        let id = st.next_id;
        st.next_id += 1;
        let evict = CancellationToken::new();
        st.entries.insert(
            id,
            Entry {
                ip,
                authenticated: false,
                evict: evict.clone(),
            },
        );
        st.unauthenticated.insert(id);
        let per = st.per_ip.entry(ip).or_default();
        per.total += 1;
        per.unauthenticated.insert(id);
        drop(st);
        let slot = Arc::new(ConnSlot {
            id,
            table: self.clone(),
            authenticated: AtomicBool::new(false),
            evict,
        });
        Ok((slot, admission))
    }

    /// `(authenticated, unauthenticated)` connections now.
    pub fn counts(&self) -> (usize, usize) {
        let st = self.lock();
        let unauth = st.unauthenticated.len();
        (st.entries.len() - unauth, unauth)
    }

    /// Tell every connection's holders that the server is stopping.
    pub fn shut_down(&self) {
        self.shutdown.cancel();
    }

    fn authenticate(&self, id: u64) {
        let mut st = self.lock();
        let Some(entry) = st.entries.get_mut(&id) else {
            return;
        };
        if entry.authenticated {
            return;
        }
        entry.authenticated = true;
        let ip = entry.ip;
        st.unauthenticated.remove(&id);
        if let Some(per) = st.per_ip.get_mut(&ip) {
            per.unauthenticated.remove(&id);
        }
    }

    fn release(&self, id: u64) {
        let mut st = self.lock();
        remove(&mut st, id);
    }
}

/// Remove `id` from every index.
fn remove(st: &mut State, id: u64) -> Option<Entry> {
    let entry = st.entries.remove(&id)?;
    st.entries.shrink_when_sparse();
    st.unauthenticated.remove(&id);
    if let Some(per) = st.per_ip.get_mut(&entry.ip) {
        per.total -= 1;
        per.unauthenticated.remove(&id);
        if per.total == 0 {
            st.per_ip.remove(&entry.ip);
            st.per_ip.shrink_when_sparse();
        }
    }
    Some(entry)
}

/// Displace the oldest unauthenticated connection (of `ip`, or of anyone):
/// its slot is freed now and its holders are told to close. `false` when
/// there is none.
fn evict_oldest(st: &mut State, ip: Option<IpAddr>) -> bool {
    let oldest = match ip {
        Some(ip) => st
            .per_ip
            .get(&ip)
            .and_then(|p| p.unauthenticated.first().copied()),
        None => st.unauthenticated.first().copied(),
    };
    let Some(id) = oldest else { return false };
    if let Some(entry) = remove(st, id) {
        entry.evict.cancel();
    }
    true
}

/// One connection's place in the table; in the request extensions of every
/// request on the connection.
pub struct ConnSlot {
    id: u64,
    table: Arc<ConnTable>,
    authenticated: AtomicBool,
    evict: CancellationToken,
}

/// Why a connection must close now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closing {
    /// Displaced by a newer connection while unauthenticated.
    Displaced,
    /// The server is stopping.
    Shutdown,
}

impl ConnSlot {
    /// The connection presented a valid credential: it no longer counts as
    /// unauthenticated and is never displaced.
    pub fn mark_authenticated(&self) {
        if !self.authenticated.swap(true, Ordering::Relaxed) {
            self.table.authenticate(self.id);
        }
    }

    /// Resolves when the connection must close.
    pub async fn closing(&self) -> Closing {
        tokio::select! {
            () = self.evict.cancelled() => Closing::Displaced,
            () = self.table.shutdown.cancelled() => Closing::Shutdown,
        }
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.table.release(self.id);
    }
}

impl std::fmt::Debug for ConnSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnSlot").field("id", &self.id).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnLimits {
        ConnLimits {
            max_total: 6,
            max_per_ip: 4,
            max_unauthenticated: 5,
            max_unauthenticated_per_ip: 3,
            exempt: vec!["10.0.0.1".parse().unwrap()],
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_table_gives_back_the_room_a_burst_made_it_grow() {
        let many = ConnLimits {
            max_total: 5_000,
            max_per_ip: 5_000,
            max_unauthenticated: 5_000,
            max_unauthenticated_per_ip: 5_000,
            exempt: vec![],
        };
        let t = ConnTable::new(many);
        let burst: Vec<_> = (0..2_000u32)
            .map(|i| {
                t.admit(IpAddr::from([192, 0, 2, (i % 200) as u8]))
                    .unwrap()
                    .0
            })
            .collect();
        assert!(t.lock().entries.capacity() >= 2_000);
        assert!(t.lock().per_ip.capacity() >= 200);
        // All but five close.
        let kept: Vec<_> = burst.into_iter().take(5).collect();
        assert_eq!(t.counts(), (0, 5));
        let room = t.lock().entries.capacity();
        assert!(room <= 4 * exoclaw_core::sparse::KEEP_CAPACITY, "{room}");
        let by_address = t.lock().per_ip.capacity();
        assert!(
            by_address <= 4 * exoclaw_core::sparse::KEEP_CAPACITY,
            "{by_address}"
        );
        assert!(kept.iter().all(|slot| !slot.evict.is_cancelled()));
        // The five still leave the table when they close, and it admits again.
        drop(kept);
        assert_eq!(t.counts(), (0, 0));
        assert!(t.admit(ip("192.0.2.1")).is_ok());
    }

    #[test]
    fn a_flood_from_one_address_only_displaces_itself() {
        let t = ConnTable::new(limits());
        let a = ip("192.0.2.1");
        let first: Vec<_> = (0..3).map(|_| t.admit(a).unwrap().0).collect();
        let (fourth, adm) = t.admit(a).unwrap();
        assert_eq!(adm.evicted, vec![Limit::UnauthenticatedPerIp]);
        assert!(first[0].evict.is_cancelled(), "the oldest goes");
        assert!(!first[1].evict.is_cancelled());
        assert_eq!(t.counts(), (0, 3));
        // Another address is untouched by a's flood.
        let (other, adm) = t.admit(ip("192.0.2.2")).unwrap();
        assert!(adm.evicted.is_empty());
        assert!(!fourth.evict.is_cancelled());
        drop(other);
        assert_eq!(t.counts(), (0, 3));
    }

    #[test]
    fn authenticated_connections_are_never_displaced_and_can_fill_a_limit() {
        let t = ConnTable::new(limits());
        let a = ip("192.0.2.1");
        let authed: Vec<_> = (0..4)
            .map(|_| {
                let s = t.admit(a).unwrap().0;
                s.mark_authenticated();
                s
            })
            .collect();
        assert_eq!(t.counts(), (4, 0));
        assert_eq!(t.admit(a).unwrap_err(), Limit::PerIp);
        assert!(authed.iter().all(|s| !s.evict.is_cancelled()));
        // Releasing one makes room again.
        drop(authed);
        assert_eq!(t.counts(), (0, 0));
        assert!(t.admit(a).is_ok());
    }

    #[test]
    fn the_total_limit_displaces_the_oldest_stranger_anywhere() {
        let t = ConnTable::new(limits());
        let mut held = Vec::new();
        for i in 0..5 {
            let s = t.admit(ip(&format!("192.0.2.{}", 10 + i))).unwrap().0;
            if i < 1 {
                s.mark_authenticated();
            }
            held.push(s);
        }
        assert_eq!(t.counts(), (1, 4));
        // The sixth fits; the seventh displaces the oldest unauthenticated.
        held.push(t.admit(ip("192.0.2.50")).unwrap().0);
        let (_, adm) = t.admit(ip("192.0.2.51")).unwrap();
        assert!(adm.evicted.contains(&Limit::Unauthenticated), "{adm:?}");
        assert!(!held[0].evict.is_cancelled(), "authenticated stays");
        assert!(held[1].evict.is_cancelled(), "oldest stranger goes");
    }

    #[test]
    fn a_trusted_proxy_is_exempt_from_per_address_limits() {
        let t = ConnTable::new(limits());
        let proxy = ip("10.0.0.1");
        let held: Vec<_> = (0..5).map(|_| t.admit(proxy).unwrap()).collect();
        assert!(held.iter().all(|(_, adm)| adm.evicted.is_empty()));
    }

    #[tokio::test]
    async fn displaced_and_shutdown_wake_the_holder() {
        let t = ConnTable::new(limits());
        let a = ip("192.0.2.1");
        let s = t.admit(a).unwrap().0;
        let _held: Vec<_> = (0..3).map(|_| t.admit(a).unwrap()).collect();
        assert_eq!(s.closing().await, Closing::Displaced);
        let s2 = t.admit(a).unwrap().0;
        s2.mark_authenticated();
        t.shut_down();
        assert_eq!(s2.closing().await, Closing::Shutdown);
    }
}

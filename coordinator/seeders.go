package coordinator

// Seeders are members that joined with seed: a browser serving its cache
// while its visitor browses the site, a Go peer's seed. They never
// download, so the coordinator introduces them only where blocks can flow
// from them (neighbours.go), and operators see them apart: how many are
// online, what they announce holding, what they uploaded.

// SeedingStats is the part of Stats about seeders.
type SeedingStats struct {
	// Peers is the connections seeding at least one swarm now.
	Peers int `json:"peers"`
	// Members counts seeder memberships (a peer seeding two files counts
	// twice).
	Members int `json:"members"`
	// CachedBytes is what seeders announce holding, from their bitfields
	// and the manifests' sizes (Config.SwarmSize; exact for whole files).
	CachedBytes int64 `json:"cachedBytes"`
	// BytesUploaded is what seeder memberships reported uploading (their
	// stats), since start: the uploads persistence added.
	BytesUploaded int64 `json:"bytesUploaded"`
}

// seedingBook accumulates SeedingStats; guarded by swarmTable.mu.
type seedingBook struct {
	peers   map[string]int // peer id → its seeder memberships
	members int
	cached  int64
	up      int64
}

// seedAdded counts a member that joined (or was rebuilt) as a seeder.
func (t *swarmTable) seedAdded(s *swarm, m *member) {
	if !m.seed {
		return
	}
	b := &t.totals.seeding
	if b.peers == nil {
		b.peers = make(map[string]int)
	}
	b.peers[m.id]++
	b.members++
	t.seedHeld(s, m)
}

// seedRemoved forgets a seeder member that left.
func (t *swarmTable) seedRemoved(m *member) {
	if !m.seed {
		return
	}
	b := &t.totals.seeding
	if b.peers[m.id]--; b.peers[m.id] <= 0 {
		delete(b.peers, m.id)
	}
	b.members--
	b.cached -= m.held
	m.held = 0
}

// seedHeld recounts the bytes a seeder holds after its bitfield changed.
func (t *swarmTable) seedHeld(s *swarm, m *member) {
	if !m.seed {
		return
	}
	var held int64
	if t.cfg.SwarmSize != nil && s.blocks > 0 {
		if size, ok := t.cfg.SwarmSize(s.id); ok {
			// Whole blocks but the last are blockSize long; for a whole
			// file this is exactly its size.
			held = size * int64(m.count) / int64(s.blocks)
		}
	}
	t.totals.seeding.cached += held - m.held
	m.held = held
}

// seedUploaded counts a seeder's reported upload.
func (t *swarmTable) seedUploaded(m *member, up int64) {
	if m.seed {
		t.totals.seeding.up += up
	}
}

func (b *seedingBook) snapshot() SeedingStats {
	return SeedingStats{Peers: len(b.peers), Members: b.members, CachedBytes: b.cached, BytesUploaded: b.up}
}

// useless reports whether x is a seeder that can give y nothing: y lacks
// nothing (yLacking is 0), or lacks only blocks x does not hold. Since a
// seeder does not download, such a link would only take a place that
// each side could give a peer that needs it.
func useless(x, y *member, yLacking int) bool {
	return x.seed && (yLacking == 0 || x.bits.CountMissing(y.bits) == 0)
}

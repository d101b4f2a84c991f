package cynet

import (
	"context"
	"time"
)

// FirstAlertID is the ClientDbId of the first alert added; every further
// alert gets the next integer, in the order alerts are added.
const FirstAlertID int64 = 1000

// maxAlerts bounds the store (slots are uint32).
const maxAlerts = 1<<32 - 1

// firstSeenDelta is how long before its LastSeen an alert was first seen
// (DateIn, FirstSeenUtc): zero for 60% of alerts, else up to two hours, in
// whole milliseconds. It depends only on the seed and ClientDbId.
func (c *catalog) firstSeenDelta(id int64) int64 {
	p := newPRNG(c.seed^0x5eed, id)
	if p.pct(60) {
		return 0
	}
	return int64(p.intn(2*3600*1000)) * int64(time.Millisecond)
}

// AddAlerts adds n generated alerts whose LastSeen, DateChanged and
// LastSeenUtc are Options.Now() at the call (read under the store lock, so
// an answer whose SyncTimeUtc is later than that time includes them). It
// returns the ClientDbId of the first one (the others follow).
func (s *Server) AddAlerts(n int) int64 { return s.add(n, 0, true) }

// AddAlertsAt is AddAlerts with LastSeen (and DateChanged) set to lastSeen
// instead of now, for back-dated backlogs. Alerts added earlier with a later
// LastSeen keep their place: listings are always ordered by LastSeen.
func (s *Server) AddAlertsAt(n int, lastSeen time.Time) int64 {
	return s.add(n, clampNS(lastSeen), false)
}

func (s *Server) add(n int, t int64, useNow bool) int64 {
	st := &s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	slot0 := len(st.recs)
	first := FirstAlertID + int64(slot0)
	if n <= 0 {
		return first
	}
	if slot0+n > maxAlerts {
		panic("cynet: too many alerts")
	}
	if useNow {
		t = s.opt.Now().UnixNano()
	}
	st.recs = grow(st.recs, n)
	for i := 0; i < n; i++ {
		st.recs = append(st.recs, record{
			dateIn: t - s.cat.firstSeenDelta(first+int64(i)), lastSeen: t, dateChanged: t, status: -1,
		})
	}
	st.byLS.insertBlock(t, uint32(slot0), n)
	st.byDC.insertBlock(t, uint32(slot0), n)
	return first
}

// Alerts is the number of alerts stored.
func (s *Server) Alerts() int {
	s.st.mu.RLock()
	defer s.st.mu.RUnlock()
	return len(s.st.recs)
}

// UpdateAlert sets the alert's LastSeen, LastSeenUtc, EpsLastSeen* and
// DateChanged to Options.Now(): the alert fired again, and a poller whose
// cursor passed its old LastSeen must see it again (spec A8 step 4). It
// reports whether the alert exists.
func (s *Server) UpdateAlert(id int64) bool { return s.update(id, 0, true) }

// UpdateAlertAt is UpdateAlert with an explicit time, which may also be
// earlier than the current LastSeen.
func (s *Server) UpdateAlertAt(id int64, lastSeen time.Time) bool {
	return s.update(id, clampNS(lastSeen), false)
}

func (s *Server) update(id int64, t int64, useNow bool) bool {
	st := &s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	slot, ok := st.slot(id)
	if !ok {
		return false
	}
	if useNow {
		t = s.opt.Now().UnixNano()
	}
	r := &st.recs[slot]
	st.byLS.move(slot, r.lastSeen, t)
	st.byDC.move(slot, r.dateChanged, t)
	r.lastSeen, r.dateChanged = t, t
	return true
}

// SetStatus sets the alert's Status (spec A7: 0 Open, 1 Pending, 2 Ignored,
// 3 Closed) and its DateChanged to Options.Now(), leaving LastSeen alone:
// the change shows on bulkByDateChanged, not on bulk. It reports whether the
// alert exists.
func (s *Server) SetStatus(id int64, status int) bool {
	st := &s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	slot, ok := st.slot(id)
	if !ok {
		return false
	}
	t := s.opt.Now().UnixNano()
	r := &st.recs[slot]
	st.byDC.move(slot, r.dateChanged, t)
	r.dateChanged, r.status = t, int8(max(0, min(status, 127)))
	return true
}

// slot maps a ClientDbId to its slot; callers hold mu.
func (st *store) slot(id int64) (uint32, bool) {
	i := id - FirstAlertID
	if i < 0 || i >= int64(len(st.recs)) {
		return 0, false
	}
	return uint32(i), true
}

// AlertJSON returns the alert as the list endpoints render it right now.
func (s *Server) AlertJSON(id int64) ([]byte, bool) {
	s.st.mu.RLock()
	slot, ok := s.st.slot(id)
	var r record
	if ok {
		r = s.st.recs[slot]
	}
	s.st.mu.RUnlock()
	if !ok {
		return nil, false
	}
	rd := &renderer{c: s.cat}
	return rd.appendAlert(nil, id, r), true
}

// StartGenerator adds alerts in the background until ctx is done or the
// server is closed: rate alerts per second, paced every 10 ms (wall
// clock), stamped with Options.Now(). With burst, the same average comes in
// bursts: 10×rate during the first second of every 10 s, nothing otherwise.
// For every 100 alerts added it also updates one random existing alert
// (UpdateAlert), so pollers see re-emitted alerts.
func (s *Server) StartGenerator(ctx context.Context, rate float64, burst bool) {
	ctx, cancel := context.WithCancel(ctx)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		cancel()
		return
	}
	s.cancels = append(s.cancels, cancel)
	s.gens.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.gens.Done()
		defer cancel()
		tick := time.NewTicker(generatorTick)
		defer tick.Stop()
		start := time.Now()
		last := start
		var owed, updOwed float64
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				dt := now.Sub(last).Seconds()
				last = now
				r := rate
				if burst {
					r = 0
					if now.Sub(start)%generatorBurstPeriod < generatorBurstDuration {
						r = rate * generatorBurstFactor
					}
				}
				owed += r * dt
				n := int(owed)
				owed -= float64(n)
				if n > 0 {
					s.AddAlerts(n)
					updOwed += float64(n) * generatorUpdateFrac
				}
				for ; updOwed >= 1; updOwed-- {
					s.updateRandom()
				}
			}
		}
	}()
}

// updateRandom updates one alert chosen at random.
func (s *Server) updateRandom() {
	n := s.Alerts()
	if n == 0 {
		return
	}
	s.mu.Lock()
	i := s.rng.intn(n)
	s.mu.Unlock()
	s.UpdateAlert(FirstAlertID + int64(i))
}

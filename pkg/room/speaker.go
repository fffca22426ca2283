package room

import "sort"

// speechThreshold is the mean loudness (127 - level in -dBov) above which a participant counts
// as speaking: louder than -50 dBov.
const speechThreshold = 77

// updateSpeakers announces the active speakers when the set changes. Room goroutine only.
func (r *Room) updateSpeakers() {
	type loud struct {
		sid      ParticipantSID
		identity Identity
		level    float64
	}
	var now []loud
	for _, t := range r.Tracks() {
		if t.info.Kind != KindAudio {
			continue
		}
		lvl, ok := t.takeSpeechLevel()
		if !ok || lvl < speechThreshold || t.muted.Load() {
			continue
		}
		now = append(now, loud{t.info.Participant, t.info.Identity, lvl / 127})
	}
	sort.Slice(now, func(i, j int) bool { return now[i].level > now[j].level })
	sids := make([]ParticipantSID, 0, len(now))
	speakers := make([]Speaker, 0, len(now))
	for _, s := range now {
		sids = append(sids, s.sid)
		speakers = append(speakers, Speaker{SID: s.sid, Identity: s.identity, Level: s.level})
	}
	if equalSIDs(sids, r.speakers) {
		return
	}
	r.speakers = sids
	r.eventMu.Lock()
	r.deliverLocked(ActiveSpeakers{Speakers: speakers}, nil)
	r.eventMu.Unlock()
}

func equalSIDs(a, b []ParticipantSID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

package metrics

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cascade-sfu/cascade/pkg/cluster/redistest"
	"github.com/cascade-sfu/cascade/pkg/room"
)

func TestNodeCollector(t *testing.T) {
	draining := false
	c := NewNodeCollector(NodeSource{
		NodeID: "eu", Region: "europe", Version: "v1.2.3",
		Draining:     func() bool { return draining },
		ClusterNodes: func() map[string]int { return map[string]int{"active": 2, "draining": 1} },
		SerfMembers:  func() map[string]int { return map[string]int{"alive": 2, "failed": 1} },
	})
	want := map[string]float64{
		"cascade_node_info{node=eu,region=europe,version=v1.2.3}": 1,
		"cascade_node_state{node=eu,state=active}":                1,
		"cascade_node_state{node=eu,state=draining}":              0,
		"cascade_cluster_nodes{node=eu,state=active}":             2,
		"cascade_cluster_nodes{node=eu,state=draining}":           1,
		"cascade_serf_members{node=eu,state=alive}":               2,
		"cascade_serf_members{node=eu,state=leaving}":             0,
		"cascade_serf_members{node=eu,state=left}":                0,
		"cascade_serf_members{node=eu,state=failed}":              1,
	}
	checkEqual(t, gather(t, c), want)

	draining = true
	got := gather(t, c)
	if got["cascade_node_state{node=eu,state=active}"] != 0 || got["cascade_node_state{node=eu,state=draining}"] != 1 {
		t.Fatalf("draining node: %v", got)
	}
	// Without gossip or a registry every state is still there, at 0.
	got = gather(t, NewNodeCollector(NodeSource{NodeID: "eu", Region: "r", Version: "v"}))
	if v, ok := got["cascade_serf_members{node=eu,state=alive}"]; !ok || v != 0 {
		t.Fatalf("no gossip: %v", got)
	}
}

func checkEqual(t *testing.T, got, want map[string]float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d series, want %d: %v", len(got), len(want), got)
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
}

func TestEventsBoundLabels(t *testing.T) {
	e := NewEvents("eu", []string{"join", "offer"}, []string{"unauthorized"})
	e.Message("join")
	e.Message("join")
	e.Message("nonsense-" + fmt.Sprint(time.Now().UnixNano())) // a client's garbage must not become a series
	e.Error("unauthorized")
	e.Error("made_up")
	e.Joined("ws", 3*time.Millisecond)
	e.Joined("carrier-pigeon", time.Second)
	e.FirstPacket(room.KindVideo, 400*time.Millisecond)
	e.FirstPacket(room.KindAudio, 200*time.Millisecond)
	e.FirstPacket(room.KindAudio, 300*time.Millisecond)
	got := map[string]float64{}
	for _, c := range e.Collectors() {
		for k, v := range gather(t, c) {
			got[k] = v
		}
	}
	want := map[string]float64{
		"cascade_signal_messages_total{node=eu,type=join}":            2,
		"cascade_signal_messages_total{node=eu,type=offer}":           0,
		"cascade_signal_messages_total{node=eu,type=other}":           1,
		"cascade_signal_errors_total{code=unauthorized,node=eu}":      1,
		"cascade_signal_errors_total{code=other,node=eu}":             1,
		"cascade_join_duration_seconds_count{node=eu,transport=ws}":   1,
		"cascade_join_duration_seconds_count{node=eu,transport=whip}": 0,
		"cascade_join_duration_seconds_count{node=eu,transport=whep}": 0,
		"cascade_first_packet_seconds_count{kind=audio,node=eu}":      2,
		"cascade_first_packet_seconds_count{kind=video,node=eu}":      1,
	}
	checkEqual(t, got, want)
}

func TestFirstPacketAllocatesNothing(t *testing.T) {
	e := NewEvents("eu", nil, nil)
	if n := testing.AllocsPerRun(100, func() { e.FirstPacket(room.KindVideo, time.Second) }); n != 0 {
		t.Fatalf("FirstPacket allocates %v times", n)
	}
}

func TestLargestRooms(t *testing.T) {
	sizes := []roomSize{{"b", 3}, {"a", 3}, {"c", 9}, {"d", 1}}
	got := largest(sizes, 3)
	want := []roomSize{{"c", 9}, {"a", 3}, {"b", 3}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("largest = %v, want %v", got, want)
	}
	if got := largest(sizes, 10); len(got) != 4 {
		t.Fatalf("largest of 4 with n=10: %v", got)
	}
}

func TestRoomCollectorTopRooms(t *testing.T) {
	rooms := room.NewManager(room.DefaultConfig())
	defer rooms.Close()
	join := func(name, id string) {
		if _, err := rooms.Join(room.Name(name), room.JoinParams{Identity: room.Identity(id), Session: room.SessionID(id + name), Sink: nopSink{}}); err != nil {
			t.Fatal(err)
		}
	}
	join("big", "a")
	join("big", "b")
	join("big", "c")
	join("mid", "a")
	join("mid", "b")
	join("small", "a")
	got := gather(t, NewRoomCollector(rooms, "eu", 2))
	if got["cascade_room_participants{node=eu,room=big}"] != 3 || got["cascade_room_participants{node=eu,room=mid}"] != 2 {
		t.Fatalf("top rooms: %v", got)
	}
	if _, ok := got["cascade_room_participants{node=eu,room=small}"]; ok {
		t.Fatal("a room outside the top 2 has a series")
	}
	for k := range gather(t, NewRoomCollector(rooms, "eu", 0)) {
		if len(k) > len("cascade_room_participants") && k[:len("cascade_room_participants")] == "cascade_room_participants" {
			t.Fatalf("per-room series with the flag off: %s", k)
		}
	}
}

// The hook on a real Redis client: commands are timed by name, pipelines as one op, a missing
// key is no error, and with Redis gone the failures are counted.
func TestRedisHook(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.NewClient()
	defer rdb.Close()
	h := NewRedisHook("eu")
	rdb.AddHook(h)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Get(ctx, "missing").Err(); err == nil {
		t.Fatal("GET of a missing key: no redis.Nil")
	}
	if _, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, "s", "x")
		p.Expire(ctx, "s", time.Minute)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_ = rdb.Do(ctx, "OBJECT", "ENCODING", "k").Err()
	got := gather(t, h)
	for k, min := range map[string]float64{
		"cascade_redis_operation_duration_seconds_count{node=eu,op=set}":      1,
		"cascade_redis_operation_duration_seconds_count{node=eu,op=get}":      1,
		"cascade_redis_operation_duration_seconds_count{node=eu,op=pipeline}": 1,
		"cascade_redis_operation_duration_seconds_count{node=eu,op=other}":    1,
	} {
		if got[k] < min {
			t.Errorf("%s = %v, want at least %v", k, got[k], min)
		}
	}
	if got["cascade_redis_errors_total{node=eu,op=get}"] != 0 {
		t.Errorf("a missing key counted as an error: %v", got)
	}

	srv.Stop(t)
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := rdb.Get(sctx, "k").Err(); err == nil || errors.Is(err, context.DeadlineExceeded) && sctx.Err() == nil {
		t.Fatalf("GET with Redis stopped: %v", err)
	}
	got = gather(t, h)
	if got["cascade_redis_errors_total{node=eu,op=get}"] != 1 {
		t.Errorf("failed GET not counted: %v", got["cascade_redis_errors_total{node=eu,op=get}"])
	}
	if got["cascade_redis_errors_total{node=eu,op=dial}"] < 1 {
		t.Errorf("failed dials not counted: %v", got["cascade_redis_errors_total{node=eu,op=dial}"])
	}
	if n := len(got); n > 2*len(redisOps) {
		t.Errorf("%d series, want at most %d (a fixed set)", n, 2*len(redisOps))
	}
}

type nopSink struct{}

func (nopSink) Deliver(room.Event) {}

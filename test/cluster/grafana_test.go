package cluster

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

const grafanaDashboard = "../../deploy/grafana/cascade.json"

// dashboardQueries returns every PromQL expression of a Grafana dashboard: the panels' target
// expressions and the query variables' queries, at any depth (rows may nest panels).
func dashboardQueries(b []byte) ([]string, error) {
	var root any
	if err := json.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("dashboard JSON: %w", err)
	}
	var out []string
	var walk func(v any, key string)
	walk = func(v any, key string) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if k == "query" && v["type"] == "datasource" {
					continue // a data source variable's query is a plugin type, not PromQL
				}
				walk(c, k)
			}
		case []any:
			for _, c := range v {
				walk(c, key)
			}
		case string:
			if key == "expr" || key == "query" || key == "definition" {
				out = append(out, v)
			}
		}
	}
	walk(root, "")
	return out, nil
}

var (
	promStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'` + "|`[^`]*`")
	promMatchers  = regexp.MustCompile(`\{[^{}]*\}`)
	promRanges    = regexp.MustCompile(`\[[^\[\]]*\]`)
	promGrouping  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	promIdent     = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	labelValues   = regexp.MustCompile(`^\s*label_values\((.*)\)\s*$`)
	promKeywords  = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true, "offset": true, "bool": true, "and": true, "or": true, "unless": true, "inf": true, "nan": true, "atan2": true}
	grafanaQueryV = regexp.MustCompile(`^\s*(?:label_names|metrics|query_result)\(`)
)

// promMetricNames returns the metric names a PromQL expression (or a Grafana label_values
// query) selects: identifiers outside strings, label matchers, ranges and grouping clauses,
// that are no function, aggregation, keyword, number or Grafana variable.
func promMetricNames(expr string) []string {
	if m := labelValues.FindStringSubmatch(expr); m != nil {
		// label_values(label) names no metric; label_values(selector, label): the selector does.
		i := strings.LastIndex(m[1], ",")
		if i < 0 {
			return nil
		}
		expr = m[1][:i]
	} else if grafanaQueryV.MatchString(expr) {
		return nil
	}
	s := promStrings.ReplaceAllString(expr, `""`)
	s = promMatchers.ReplaceAllString(s, " ")
	s = promRanges.ReplaceAllString(s, " ")
	s = promGrouping.ReplaceAllString(s, " ")
	var names []string
	for _, loc := range promIdent.FindAllStringIndex(s, -1) {
		id := s[loc[0]:loc[1]]
		if loc[0] > 0 && strings.ContainsRune("$0123456789.", rune(s[loc[0]-1])) {
			continue // a Grafana variable or the exponent/unit of a number
		}
		if promKeywords[strings.ToLower(id)] {
			continue
		}
		if rest := strings.TrimLeft(s[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue // a function or an aggregation
		}
		if !slices.Contains(names, id) {
			names = append(names, id)
		}
	}
	return names
}

func TestPromMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`sum by (node, direction) (rate(cascade_rtp_packets_total{node=~"$node"}[$__rate_interval])) * 8`:                                 {"cascade_rtp_packets_total"},
		`histogram_quantile(0.99, sum by (le, op) (rate(cascade_redis_operation_duration_seconds_bucket{node=~"$node", op!="a b"}[5m])))`: {"cascade_redis_operation_duration_seconds_bucket"},
		`sum without (instance) (rate(a_sum[1m])) / on (node) group_left (region) rate(b_count[1m] offset 5m) > bool 1e3`:                 {"a_sum", "b_count"},
		`cascade_node_state{node=~"$node"} == 1 or max(cascade_cluster_nodes)`:                                                            {"cascade_node_state", "cascade_cluster_nodes"},
		`topk(10, cascade_room_participants{room="sum(x)"})`:                                                                              {"cascade_room_participants"},
		`label_values(cascade_node_info{node=~"$node"}, instance)`:                                                                        {"cascade_node_info"},
		`label_values(node)`: nil,
		`rate(process_cpu_seconds_total{instance=~"$instance"}[$__rate_interval])`: {"process_cpu_seconds_total"},
		`{__name__="x"}`: nil,
	} {
		if got := promMetricNames(expr); !slices.Equal(got, want) {
			t.Errorf("promMetricNames(%q) = %q, want %q", expr, got, want)
		}
	}
}

// sampleNames returns the names of the samples in a /metrics body (a histogram's are its
// _bucket, _sum and _count series).
func sampleNames(b []byte) map[string]bool {
	names := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names
}

// Every metric the Grafana dashboard queries exists in /metrics of a running cluster: two nodes
// with real Redis and Serf carry a room with real media across a relay link (a publisher and a
// subscriber on eu, a subscriber on hcm), after one refused request.
func TestGrafanaDashboardQueriesExistingMetrics(t *testing.T) {
	b, err := os.ReadFile(grafanaDashboard)
	if err != nil {
		t.Fatal(err)
	}
	queries, err := dashboardQueries(b)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Templating struct {
			List []struct{ Name, Type string } `json:"list"`
		} `json:"templating"`
	}
	_ = json.Unmarshal(b, &dash)
	if !slices.ContainsFunc(dash.Templating.List, func(v struct{ Name, Type string }) bool { return v.Name == "node" }) ||
		!bytes.Contains(b, []byte(`node=~\"$node\"`)) {
		t.Error("the dashboard has no templated node variable used by its queries")
	}
	wanted := map[string][]string{} // metric name -> the queries that use it
	for _, q := range queries {
		for _, n := range promMetricNames(q) {
			wanted[n] = append(wanted[n], q)
		}
	}
	if len(wanted) < 30 {
		t.Fatalf("only %d metric names found in %d dashboard queries: %v", len(wanted), len(queries), wanted)
	}

	eu, hcm := twoNodes(t, "--metrics-top-rooms", "3") // per-room series need the top-N flag
	mediaAcrossRelay(t, eu, hcm, "grafana")

	// A refusal a user would see (WHIP without a token), for the signalling error series.
	resp, err := http.Post(eu.url+"/whip/grafana", "application/sdp", strings.NewReader("v=0\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	var missing []string
	check := func() bool {
		have := map[string]bool{}
		for _, p := range []*proc{eu, hcm} {
			resp, err := http.Get(p.url + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for n := range sampleNames(body) {
				have[n] = true
			}
		}
		missing = missing[:0]
		for n := range wanted {
			if !have[n] {
				missing = append(missing, n)
			}
		}
		slices.Sort(missing)
		return len(missing) == 0
	}
	deadline := time.Now().Add(15 * time.Second)
	for !check() && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
	}
	if len(missing) > 0 {
		var lines []string
		for _, n := range missing {
			lines = append(lines, fmt.Sprintf("  %s (in %d queries, e.g. %s)", n, len(wanted[n]), wanted[n][0]))
		}
		t.Fatalf("%d of the %d metric names the Grafana dashboard queries are not in /metrics of eu or hcm:\n%s",
			len(missing), len(wanted), strings.Join(lines, "\n"))
	}
}

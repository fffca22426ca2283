package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const defaultChromium = "/usr/bin/chromium"

// chromiumPath returns the browser to test with. Without one the test is
// skipped, except on CI, which installs it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	path := os.Getenv("CHROMIUM")
	if path == "" {
		path = defaultChromium
	}
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set but there is no Chromium at %s: %v", path, err)
		}
		t.Skipf("no Chromium at %s (apt-get install -y chromium, or set CHROMIUM); skipping the browser test", path)
	}
	return path
}

// browserFlags are the Chromium switches for an offline, headless, root-run
// browser with fake camera and microphone. Every switch that makes Chromium
// reach out to the network on its own is off, and none of chromedp's
// DefaultExecAllocatorOptions is used implicitly. chromedp itself adds a fresh
// --user-data-dir (a new temporary directory it removes afterwards, killing
// any leftover helper processes that use it) and --remote-debugging-pipe.
func browserFlags(execPath string) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(execPath),
		chromedp.Headless, // also hide-scrollbars and mute-audio
		chromedp.NoSandbox,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("disable-client-side-phishing-detection", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		// Not --disable-crashpad-for-testing: with Chromium 156 it makes every
		// navigation fail with ERR_ABORTED. The crashpad handler exits with the
		// browser (it lingers a moment as a zombie until PID 1 reaps it).
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,DialMediaRouteProvider,OptimizationHints,AutofillServerCommunication,CertificateTransparencyComponentUpdater"),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("safebrowsing-disable-auto-update", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// Two tabs must both keep running timers, rendering and decoding.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		// Media: fake devices, auto-accepted, audio may autoplay, and ICE may
		// use loopback (a namespace may have nothing else).
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
	}
}

// startBrowser starts headless Chromium and returns its root context. The
// browser stops when the test ends.
func startBrowser(t *testing.T, log *syncBuffer) context.Context {
	t.Helper()
	// Not t.Context(): that ends before the cleanups run, and the cleanups
	// still read the pages' state for the failure report.
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.WithoutCancel(t.Context()), browserFlags(chromiumPath(t))...)
	ctx, cancel := chromedp.NewContext(allocCtx,
		chromedp.WithBrowserOption(
			chromedp.WithBrowserLogf(log.Printf),
			chromedp.WithBrowserErrorf(log.Printf),
		))
	t.Cleanup(func() {
		cancel() // waits for the browser to exit
		cancelAlloc()
	})
	// The first Run starts the browser; its context must have no timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx
}

// page is one tab, in a browser context of its own (no shared storage).
type page struct {
	name    string
	ctx     context.Context
	console *syncBuffer
}

// openPage opens url in a new tab of its own browser context and records its
// console. The tab closes when the test ends.
func openPage(t *testing.T, browserCtx context.Context, name, url string) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	p := &page{name: name, ctx: ctx, console: &syncBuffer{}}
	messages := chromedp.Console(ctx) // creates the tab and subscribes
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			p.console.Printf("%s %s", m.Time.Format("15:04:05.000"), m.String())
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	nctx, ncancel := context.WithTimeout(ctx, 20*time.Second)
	defer ncancel()
	if err := chromedp.Do(nctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("%s: opening %s: %v", name, url, err)
	}
	return p
}

// eval evaluates expr in the page, awaits it if it is a promise, and decodes
// its JSON value into T.
func eval[T any](p *page, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		return v, fmt.Errorf("%s: %s: %w", p.name, expr, err)
	}
	return v, nil
}

// describe returns what a failure report needs to know about the page.
func (p *page) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "=== page %s\n", p.name)
	state, err := eval[json.RawMessage](p, `(async () => {
		const c = window.cascade;
		if (!c) return {loaded: false, url: location.href};
		let stats, route = null;
		try { stats = await c.stats(); } catch (e) { stats = String(e); }
		if (c.route) {
			try { route = await c.route(); } catch (e) { route = String(e); }
		}
		return {state: c.state, errors: c.errors(), chatLog: c.chatLog(), route, stats};
	})()`)
	if err != nil {
		fmt.Fprintf(&b, "state: %v\n", err)
	} else {
		fmt.Fprintf(&b, "state: %s\n", state)
	}
	fmt.Fprintf(&b, "console:\n%s", p.console.String())
	return b.String()
}

// screenshot saves a PNG of the page into $CASCADE_E2E_SCREENSHOTS, if set.
func (p *page) screenshot(t *testing.T, label string) {
	dir := os.Getenv("CASCADE_E2E_SCREENSHOTS")
	if dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Logf("%s: screenshot: %v", p.name, err)
		return
	}
	file := filepath.Join(dir, fmt.Sprintf("%s-%s-%s.png", strings.ReplaceAll(t.Name(), "/", "_"), p.name, label))
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Logf("%s: screenshot: %v", p.name, err)
	}
}

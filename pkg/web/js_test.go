package web

import (
	"bytes"
	"io/fs"
	"os/exec"
	"testing"

	sdkjs "github.com/cascade-sfu/cascade/sdk/js"
)

// TestJavaScriptParses checks the syntax of every script of the page. The
// SDK's own tests (its pure parts, under node's test runner) are in sdk/js/test
// and run by `make test-js`; its media parts by the Chromium tests of test/e2e.
func TestJavaScriptParses(t *testing.T) {
	for _, name := range []string{"cascade.js", "app.js"} {
		t.Run(name, func(t *testing.T) {
			src, err := files.ReadFile("static/" + name)
			if name == "cascade.js" {
				src, err = fs.ReadFile(sdkjs.FS(), sdkjs.ModuleName)
			}
			if err != nil {
				t.Fatal(err)
			}
			node, err := exec.LookPath("node")
			if err != nil {
				t.Skip("node is not installed")
			}
			cmd := exec.CommandContext(t.Context(), node, "--input-type=module", "--check")
			cmd.Stdin = bytes.NewReader(src)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s does not parse: %v\n%s", name, err, out)
			}
		})
	}
}

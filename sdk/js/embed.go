// Package sdkjs embeds the browser SDK, cascade.js, so that a node serves
// exactly the module published to npm as @cascade-sfu/client (see
// package.json and README.md in this directory).
//
// The directory is the npm package; this file only lets Go code reach the
// module, since go:embed cannot name files outside the embedding package.
package sdkjs

import (
	"embed"
	"io/fs"
)

// files holds cascade.js. go:embed needs a package-level variable; an
// embed.FS is read-only.
//
//go:embed cascade.js
var files embed.FS

// ModuleName is the file name of the SDK module.
const ModuleName = "cascade.js"

// FS returns a read-only file system holding ModuleName.
func FS() fs.FS { return files }

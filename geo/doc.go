// Package geo decides which media node a client should join: it knows the
// deployment regions, measures great-circle distances, resolves where a
// client is, and picks the closest usable node.
//
// # What it owns
//
//   - The region table (Regions, LookupRegion): short codes such as "sgp" or
//     "hcm" and the city standing for each.
//   - Distance (Point, DistanceKm): haversine on a sphere of mean Earth radius.
//   - Client location (Locator, Hint, Source): where a client probably is.
//   - Node choice (Pick, Node, Options): the rules that turn a location and a
//     cluster snapshot into one node.
//
// It does not know how nodes are discovered or how clients are redirected;
// the caller passes a snapshot of the cluster to Pick and acts on the result.
//
// # Locating a client
//
// Locator.Locate tries these sources in order and uses the first that works:
//
//  1. SourceExplicit: latitude and longitude sent by the client (for example
//     from the browser's Geolocation API or an app setting). This is the most
//     precise and the client's own choice, so it wins. Invalid coordinates
//     are ignored.
//  2. SourceRegion: a region code sent by the client or configured by the
//     application ("join me in sgp"). Unknown codes are ignored.
//  3. SourceGeoIP: the client's IP address looked up in a MaxMind
//     GeoIP2/GeoLite2-City database, when one was given to NewLocator. Used
//     when the client said nothing; addresses not in the database, or without
//     a location, are ignored.
//  4. SourceNode: the fallback, the location of the node that received the
//     request.
//
// The fallback has a known flaw: it measures from the node that received the
// request, not from the client. Anycast, DNS steering or a load balancer may
// have sent the request far from the client (a user in Hanoi whose request
// lands in Amsterdam would be routed as if in Amsterdam), and the result is
// then only as good as that upstream routing. That is why explicit
// coordinates and GeoIP come first, and why deployments should configure a
// GeoIP database.
//
// Geography is a proxy for latency. The client SDK can refine the choice:
// it measures round-trip times to candidate nodes with /v1/ping and may
// switch to a node that answers faster than the one geo picked. Nothing in
// this package performs network I/O apart from reading the GeoIP file.
//
// # Choosing a node
//
// Pick ignores draining and full nodes, then prefers the closest one. Nodes
// within 1 % or 25 km of the closest distance are tied, and the tie goes to
// the least-loaded, then the lowest ID, so equal inputs in any order give the
// same answer. With Options.RoomAffinity > 0, a node already hosting the room
// wins when it is at most that fraction (plus 50 km) farther than the closest
// node, which keeps a room on fewer nodes and saves relay hops.
//
// # Concurrency properties
//
//   - The package has no mutable package-level state. Regions returns a fresh
//     slice on each call.
//   - Pick, DistanceKm and LookupRegion are pure functions, safe for
//     concurrent use; Pick does not modify the nodes slice.
//   - A Locator is safe for concurrent use. Close may be called at any time
//     and more than once: it waits for in-flight GeoIP lookups, releases the
//     database, and later Locate calls skip GeoIP.
package geo

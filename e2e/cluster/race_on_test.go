//go:build race

package cluster

// raceEnabled: the nodes' binary is built with -race too, and a data race
// reported in a node's log fails the test.
const raceEnabled = true

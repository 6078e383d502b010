package main

// gcHeadroom is how much the heap of serve may grow between two
// collections while it is small (package gcfloor): under load a server
// with a heap of a few megabytes collected 20 to 30 times a second, and
// each collection held up every request in flight on a server given one
// core (docs/benchmarks.md, Tail latency). GOGC in the environment turns
// it off.
const gcHeadroom = 32 << 20

// Command gonothing does nothing: its run time is what starting and
// stopping a static Go program costs, the yardstick for psnic's start-up.
package main

func main() {}

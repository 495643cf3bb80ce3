"""The pure core: conference state, events, commands, decide/evolve, who hears whom. Stdlib only."""

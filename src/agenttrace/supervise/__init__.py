"""`agenttrace run`: supervise a command as a production job (process tree, exit states, orphans)."""

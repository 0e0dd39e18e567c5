"""`devlink watch`: the dev server (config, watcher, session lock and socket, terminal)."""

"""The `pcclip` command line: composes the commands of `app` and `training`."""

import sys

try:
    from sync_core.surfaces.cli import main
except KeyboardInterrupt:  # Ctrl-C while starting: nothing began, nothing to close
    sys.exit(130)

sys.exit(main())

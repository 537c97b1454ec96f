#!/usr/bin/python3
"""Django's command-line utility for μblog (run it with Debian's /usr/bin/python3)."""
import os
import sys

# The release folder is read-only: never try to write bytecode next to the sources.
sys.dont_write_bytecode = True


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()

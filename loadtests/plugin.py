"""The recording plugin as a locustfile of its own, loaded beside a user's plain one:
`locust -f loadtests/plugin.py,their_locustfile.py` (bench run does this for a locustfile outside the
catalog).

Locust imports each `-f` file by its path under the file's stem, so loading `loadtests/hooks.py` itself would
run it a second time as a module `hooks` next to the `loadtests.hooks` the scenarios import (through
`loadtests.common`): its options registered twice (argparse's "conflicting option string: --db-ms") and
every request recorded twice. This file only imports it under its package name, so with a scenario that
imports it too there is still one module: its event hooks and options are registered once. It defines no
user class.
"""

import loadtests.hooks  # noqa: F401  (registers the plugin's options and event hooks)

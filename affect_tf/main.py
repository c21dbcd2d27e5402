r"""Command line of affect_tf: flags -> Config -> the stages of --mode.

    python -m affect_tf.main --flagfile=configs/demo.flags
    python -m affect_tf.main --flagfile=configs/fi.flags --mode=train

Run flagfiles from the repository root. Every leaf field of :class:`affect_tf.config.Config` is a
flag of the same name (``--helpfull`` lists them by section, with their help); this is the only
module that reads flags, everything else takes a ``Config``.
"""

from __future__ import annotations

import errno
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# TensorFlow's C++ start-up lines (a CUDA cuInit error on machines without a GPU) stay hidden
# unless --verbosity >= 1 asks for them; a level the user exported wins. Set before any import in
# case one loads TensorFlow; main() lowers it once the flags are known.
_TF_LOG_LEVEL_FROM_USER = "TF_CPP_MIN_LOG_LEVEL" in os.environ
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags, logging  # noqa: E402

from affect_tf import artifacts  # noqa: E402
from affect_tf import config as config_lib  # noqa: E402
from affect_tf import errors  # noqa: E402
from affect_tf import preflight  # noqa: E402
from affect_tf import startup  # noqa: E402

_DEFINE = {bool: flags.DEFINE_boolean, int: flags.DEFINE_integer, float: flags.DEFINE_float,
           str: flags.DEFINE_string}


def _define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines one flag per leaf field of Config: same name, type, default, choices and help.

    absl groups ``--helpfull`` by the module a flag is registered under; each section is
    registered under its own name (numbered, as absl sorts the groups by name), and every flag
    is also a key flag of this module so that ``--help`` lists them all.
    """
    groups: dict[type, str] = {}
    for setting in config_lib.settings():
        if setting.section not in groups:
            # Zero-padded: absl sorts the groups by name, and "10." would sort before "2.".
            groups[setting.section] = (f"{len(groups) + 1:02d}. {setting.section.TITLE} "
                                       f"(affect_tf.config.{setting.section.__name__})")
        group = groups[setting.section]
        if setting.choices:
            flags.DEFINE_enum(setting.name, setting.default, setting.choices, setting.help,
                              flag_values=flag_values, module_name=group)
        else:
            _DEFINE[setting.type](setting.name, setting.default, setting.help,
                                  flag_values=flag_values, module_name=group)
        flags.declare_key_flag(setting.name, flag_values=flag_values)


_define_flags()
FLAGS = flags.FLAGS


def config_from_flags(values: flags.FlagValues = FLAGS) -> config_lib.Config:
    """Builds and validates the run configuration from parsed flags."""
    flat = {setting.name: values[setting.name].value for setting in config_lib.settings()}
    return config_lib.from_flat(flat).validate()


def _quiet_tensorflow_unless_verbose(verbosity: int) -> None:
    if not _TF_LOG_LEVEL_FROM_USER:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0" if verbosity >= 1 else "3"


def _os_error_message(error: OSError) -> str:
    """One line for a file the run cannot read or write (permissions, a full or read-only disk,
    a file where a directory must be)."""
    where = error.filename if error.filename is not None else "a file of the run"
    return (f"Cannot use {where}: {error.strerror or error}. The run needs to read and write its "
            "work directory, data directory and stage directories: make it writable (or free "
            "space), or pass another --workdir / --data_dir.")


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments (use --flag=value): {argv[1:]}")
    try:
        config = config_from_flags()
    except config_lib.ConfigError as error:
        logging.error("Invalid configuration: %s", error)
        return 2
    try:
        preflight.check(config)  # Seconds, before TensorFlow loads and any stage runs.
    except preflight.PreflightError as error:
        logging.error("The run cannot start:\n%s", error)
        return 2
    # The lock before TensorFlow loads: a second run on a busy workdir is refused at once.
    lock = artifacts.WorkdirLock(config.workdir)
    try:
        lock.acquire()
    except artifacts.WorkdirLockedError as error:
        logging.error("%s", error)
        return 2
    try:
        _quiet_tensorflow_unless_verbose(FLAGS.verbosity)
        with startup.without_native_startup_noise(os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"):
            # TensorFlow loads only after the flags parse, the preflight checks and the lock.
            from affect_tf import stages  # noqa: PLC0415

        if config.train.distribution == "multi_worker" and config.mode in ("train", "all"):
            # Before TensorFlow's first op: it configures collective ops once, at start-up.
            stages.train_lib.distribution_strategy("multi_worker")
        stages.run(config, preflight_checked=True, lock_held=True)
    except errors.RunError as error:
        logging.error("%s", error)
        return 2
    except (PermissionError, NotADirectoryError, IsADirectoryError, FileExistsError) as error:
        logging.error("%s", _os_error_message(error))
        return 2
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EROFS, errno.EDQUOT):
            raise
        logging.error("%s", _os_error_message(error))
        return 2
    finally:
        lock.release()
    return 0


def run() -> None:
    app.run(main)


if __name__ == "__main__":
    sys.exit(run())

// keel/keel.hpp — everything a program embedding keel needs.
#pragma once

#include "keel/backup_archive.hpp"
#include "keel/host.hpp"
#include "keel/host_restore.hpp"
#include "keel/node.hpp"
#include "keel/observer.hpp"
#include "keel/options.hpp"
#include "keel/snapshot_file.hpp"
#include "keel/state_machine.hpp"
#include "keel/status.hpp"
#include "keel/status_report.hpp"
#include "keel/transport.hpp"

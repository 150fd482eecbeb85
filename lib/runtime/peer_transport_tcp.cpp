// The TCP transport for replicas: adapts keel::transport (lib/transport/).
// Until that library lands in this branch, nodes run without a network
// (a lone node needs none).
#include "runtime/replica.hpp"

namespace keel::runtime {

TransportFactory default_transport_factory() {
    return {};
}

}  // namespace keel::runtime

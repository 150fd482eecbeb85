// GET /ui: the status page (status_page.hpp), whose policy lets it connect to
// the current members.
#include "handlers.hpp"
#include "member_origins.hpp"

namespace keel::daemon {

void add_ui_routes(Router& router, HandlerContext& context,
                   std::shared_ptr<const StatusPage> page) {
    HandlerContext* c = &context;
    // Open: the page holds no data; the calls it makes need a read token.
    router.add("GET", "/ui", Access::open, [c, page](RouteRequest&, Respond respond) {
        respond(page->response(member_origins(c->node.status(), c->url_scheme)));
    });
}

}  // namespace keel::daemon

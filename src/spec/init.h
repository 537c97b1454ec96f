// `adhoc init`: an adhoc.toml for the app in a folder, detected from its files.
//
// Detects a Django project (a manage.py, at the top or up to two folders down, whose
// folder holds a settings package with settings.py and wsgi.py) -> a backend image, a
// gunicorn service, migrate (and collectstatic) tasks; a Celery app (celery_app.py or
// celery.py in that package) -> `worker` and `beat` services; a frontend folder with a
// package.json -> a frontend image and an nginx `web-ui` service; [postgres] and
// [redis] (with [env] entries for the variable names the settings read) when the
// settings mention them. The text loads without errors (ParseProject).
// Reads files only. Thread-safe.
#pragma once

#include <filesystem>
#include <string>

#include "common/result.h"

namespace adhoc::spec {

// The adhoc.toml text, or a NotFound error when no Django project is there.
Result<std::string> DetectProject(const std::filesystem::path& dir);

}  // namespace adhoc::spec

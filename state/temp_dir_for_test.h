// Moved to tests/util/temp_dir_for_test.h (on every gale_test's include path). Kept only for
// topology/checkpoint_coordinator_test.cpp, which includes it by this path: delete this file once
// that test includes "temp_dir_for_test.h".
#pragma once

#include "../tests/util/temp_dir_for_test.h"

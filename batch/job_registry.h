// The micro-batch jobs of this process, as awaitAnyTermination, awaitTermination, activeJobs and
// resetTerminated (gale/batch/microbatch.h) see them; BatchJob (job.cpp) adds itself and says
// when it ends.
#pragma once

#include "gale/batch/microbatch.h"

namespace gale::jobs {

// Started: kept until resetTerminated() after it ended (a job whose handles were all dropped
// keeps running until stopped).
void add(MicroBatchJob job);
// A job ended: wakes awaitAnyTermination.
void ended();

}  // namespace gale::jobs

// Scheduling priority of the calling thread: background work (compaction)
// gives way to the threads that answer requests when the CPUs are busy.
#ifndef COUNTERD_PLATFORM_THREAD_PRIORITY_H_
#define COUNTERD_PLATFORM_THREAD_PRIORITY_H_

namespace counterd::platform {

// Raises the calling thread's nice value by |increment| (Linux schedules
// threads one by one, so the rest of the process keeps its priority).
// Best effort: false if the system refused, which changes nothing else.
bool LowerThisThreadPriority(int increment);

// The calling thread's nice value.
int ThisThreadNice();

}  // namespace counterd::platform

#endif  // COUNTERD_PLATFORM_THREAD_PRIORITY_H_

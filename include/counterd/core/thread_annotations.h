// Clang thread-safety annotations (leveldb's port/thread_annotations.h):
// locking contracts the compiler checks when building with clang and
// -Wthread-safety (the `clang` preset; CI builds it with -Werror). Under
// other compilers they expand to nothing.
#ifndef COUNTERD_CORE_THREAD_ANNOTATIONS_H_
#define COUNTERD_CORE_THREAD_ANNOTATIONS_H_

#if defined(__clang__)
#define COUNTERD_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define COUNTERD_THREAD_ANNOTATION(x)
#endif

// On a class: instances are a lock ("mutex").
#define CAPABILITY(x) COUNTERD_THREAD_ANNOTATION(capability(x))
// On a RAII class that holds a lock for its lifetime.
#define SCOPED_CAPABILITY COUNTERD_THREAD_ANNOTATION(scoped_lockable)
// On a field: only read or written with |x| held.
#define GUARDED_BY(x) COUNTERD_THREAD_ANNOTATION(guarded_by(x))
// On a pointer field: the pointee is guarded by |x|.
#define PT_GUARDED_BY(x) COUNTERD_THREAD_ANNOTATION(pt_guarded_by(x))
// On a function: callers must hold |...| (exclusively / shared).
#define REQUIRES(...) \
  COUNTERD_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) \
  COUNTERD_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))
// On a function: callers must NOT hold |...| (it takes them itself).
#define EXCLUDES(...) COUNTERD_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
// On lock/unlock functions.
#define ACQUIRE(...) COUNTERD_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) \
  COUNTERD_THREAD_ANNOTATION(acquire_shared_capability(__VA_ARGS__))
#define RELEASE(...) COUNTERD_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) \
  COUNTERD_THREAD_ANNOTATION(release_shared_capability(__VA_ARGS__))
#define RELEASE_GENERIC(...) \
  COUNTERD_THREAD_ANNOTATION(release_generic_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) \
  COUNTERD_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
// On a function returning a reference to a lock.
#define RETURN_CAPABILITY(x) COUNTERD_THREAD_ANNOTATION(lock_returned(x))
// On a function that asserts |x| is held (tells the analysis so).
#define ASSERT_CAPABILITY(x) COUNTERD_THREAD_ANNOTATION(assert_capability(x))
// Opt a function out of the analysis; say why where it is used.
#define NO_THREAD_SAFETY_ANALYSIS \
  COUNTERD_THREAD_ANNOTATION(no_thread_safety_analysis)

#endif  // COUNTERD_CORE_THREAD_ANNOTATIONS_H_

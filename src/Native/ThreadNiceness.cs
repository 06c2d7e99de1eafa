namespace MiniVmm.Native;

/// <summary>
/// The scheduling niceness of the calling thread (Linux schedules threads, so setpriority(2) on
/// the thread id changes only that thread). .NET's <c>Thread.Priority</c> does nothing on Linux;
/// this is how a background worker gives way to the threads that matter.
/// </summary>
public static class ThreadNiceness
{
    /// <summary>The nicest value: the thread runs only when nothing else wants the CPU.</summary>
    public const int Lowest = 19;

    /// <summary>Sets the calling thread's niceness (-20 to 19); raising it needs no privilege.</summary>
    /// <exception cref="NativeCallException">setpriority failed.</exception>
    public static void SetForCurrentThread(int niceness)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(niceness, -20);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(niceness, 19);
        int tid = LibC.gettid();
        if (LibC.setpriority(LibC.PRIO_PROCESS, tid, niceness) < 0)
        {
            throw NativeCallException.FromLastError("setpriority", $"thread {tid}, niceness {niceness}");
        }
    }
}

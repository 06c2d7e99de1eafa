using System.Numerics;
using MiniVmm.Native;

namespace MiniVmm.Vfio;

/// <summary>
/// An emulated VFIO device's migration surface, mirroring the kernel's ioctls: the migration
/// feature (<see cref="QueryFlags"/>), MIG_DEVICE_STATE (<see cref="SetState"/>, <see cref="GetState"/>),
/// MIG_DATA_SIZE (<see cref="StopCopySize"/>), PRECOPY_INFO (<see cref="PrecopyInfo"/>), DEVICE_RESET
/// (<see cref="Reset"/>) and DMA dirty logging. The base class is the driver loop: it walks
/// <see cref="VfioMigrationFsm.Path"/> one arc at a time, calling the device's method for each arc,
/// and runs the data sessions. Saving data fds are pipes (read with <see cref="ReadData"/> for the
/// ENOMSG semantics, or plain read(2)); resuming data fds are memfds filled with write(2).
/// All members are thread-safe.
/// </summary>
public abstract class VfioDevice : IDisposable
{
    /// <summary>Most ranges DMA_LOGGING_START accepts (a page of 16-byte range structs).</summary>
    public const int MaxDmaLoggingRanges = 4096 / 16;

    /// <summary>Smallest dirty-tracking and report page size.</summary>
    public const ulong MinDmaPageSize = 4096;

    private readonly object _stateLock = new();
    private readonly object _logLock = new();
    private readonly VfioMigrationFlags _flags;
    private readonly string _name;
    private VfioDeviceState _state = VfioDeviceState.Running;
    private VfioSavingSession? _saving;
    private VfioResumingSession? _resuming;
    private VfioDmaDirtyLog? _dirtyLog;
    private bool _disposed;

    /// <summary>Creates the device in RUNNING.</summary>
    /// <param name="flags">Migration capabilities; must include <see cref="VfioMigrationFlags.StopCopy"/>.</param>
    /// <param name="name">Names the device in messages and threads.</param>
    protected VfioDevice(VfioMigrationFlags flags, string name)
    {
        if (!flags.HasFlag(VfioMigrationFlags.StopCopy)
            || (flags & ~(VfioMigrationFlags.StopCopy | VfioMigrationFlags.P2P | VfioMigrationFlags.PreCopy)) != 0)
        {
            throw new ArgumentException($"Migration flags {flags} must be STOP_COPY, optionally with P2P and/or PRE_COPY", nameof(flags));
        }
        ArgumentNullException.ThrowIfNull(name);
        _flags = flags;
        _name = name;
    }

    /// <summary>The device's name.</summary>
    public string Name => _name;

    /// <summary>Whether the device implements DMA dirty logging; when false the logging calls fail with ENOTTY.</summary>
    protected virtual bool SupportsDmaLogging => true;

    /// <summary>The migration capabilities (GET VFIO_DEVICE_FEATURE_MIGRATION).</summary>
    public VfioMigrationFlags QueryFlags() => _flags;

    /// <summary>The current migration state (GET VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE).</summary>
    public VfioDeviceState GetState()
    {
        lock (_stateLock)
        {
            return _state;
        }
    }

    /// <summary>
    /// Moves the device to <paramref name="requested"/> (SET VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE), one
    /// arc at a time. Returns the new data fd when the last arc opens a data session (RUNNING→PRE_COPY,
    /// RUNNING_P2P→PRE_COPY_P2P, STOP→STOP_COPY: a saving pipe's read end; STOP→RESUMING: a memfd to
    /// write the state into), else null. The caller owns the returned descriptor.
    /// </summary>
    /// <exception cref="VfioMigrationException">
    /// EINVAL when the state machine refuses the request (the device state is unchanged); the arc's
    /// errno when an arc fails, in which case the device is now in ERROR until <see cref="Reset"/>.
    /// </exception>
    public FileDescriptorHandle? SetState(VfioDeviceState requested)
    {
        lock (_stateLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (requested == _state)
            {
                return null;
            }
            IReadOnlyList<VfioDeviceState> path = VfioMigrationFsm.Path(_flags, _state, requested);
            FileDescriptorHandle? dataFd = null;
            foreach (VfioDeviceState next in path)
            {
                if (dataFd is not null)
                {
                    // A data fd from an arc that is not the last one: the kernel drivers refuse this.
                    dataFd.Dispose();
                    EnterError();
                    throw new VfioMigrationException(Errno.EINVAL, $"{_name}: arc {_state} -> {next} follows an arc that opened a data session");
                }
                try
                {
                    dataFd = PerformArc(_state, next);
                }
                catch (Exception error)
                {
                    VfioDeviceState from = _state;
                    EnterError();
                    throw error switch
                    {
                        VfioMigrationException migration => migration,
                        NativeCallException native => new VfioMigrationException(native.Errno, $"{_name}: arc {from} -> {next} failed", native),
                        _ => new VfioMigrationException(Errno.EIO, $"{_name}: arc {from} -> {next} failed: {error.Message}", error),
                    };
                }
                _state = next;
            }
            return dataFd;
        }
    }

    /// <summary>
    /// Reads saving data from <paramref name="dataFd"/> with the uAPI's read(2) semantics: returns the
    /// byte count, 0 at the end of the state in STOP_COPY (and after the session ended), and throws
    /// <see cref="NativeCallException"/> with <see cref="Errno.ENOMSG"/> at a temporary end in PRE_COPY
    /// or PRE_COPY_P2P (no data for now; PRECOPY_INFO re-arms it). A descriptor that is not the current
    /// saving session's is read with plain read(2).
    /// </summary>
    public int ReadData(FileDescriptorHandle dataFd, Span<byte> buffer)
    {
        ArgumentNullException.ThrowIfNull(dataFd);
        VfioSavingSession? session;
        lock (_stateLock)
        {
            session = _saving;
        }
        return session is not null && session.Owns(dataFd) ? session.Read(dataFd, buffer) : dataFd.Read(buffer);
    }

    /// <summary>The length of the data the stop-copy phase will produce (GET VFIO_DEVICE_FEATURE_MIG_DATA_SIZE).</summary>
    public ulong StopCopySize()
    {
        lock (_stateLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return GetStopCopySize();
        }
    }

    /// <summary>
    /// The precopy data not read yet (VFIO_MIG_GET_PRECOPY_INFO): initial bytes, then dirty bytes.
    /// Re-arms the data fd when the device has new dirty data after a temporary end (ENOMSG).
    /// </summary>
    /// <exception cref="VfioMigrationException">EINVAL outside PRE_COPY and PRE_COPY_P2P.</exception>
    public (ulong InitialBytes, ulong DirtyBytes) PrecopyInfo()
    {
        lock (_stateLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_state is not (VfioDeviceState.PreCopy or VfioDeviceState.PreCopyP2P) || _saving is null)
            {
                throw new VfioMigrationException(Errno.EINVAL, $"{_name}: PRECOPY_INFO in {_state}");
            }
            try
            {
                return _saving.PrecopyInfo();
            }
            catch (NativeCallException error)
            {
                throw new VfioMigrationException(error.Errno, $"{_name}: PRECOPY_INFO failed", error);
            }
        }
    }

    /// <summary>VFIO_DEVICE_RESET: closes the data sessions, resets the device and returns it to RUNNING (also from ERROR).</summary>
    public void Reset()
    {
        lock (_stateLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            CloseSessions();
            ResetDevice();
            _state = VfioDeviceState.Running;
        }
    }

    /// <summary>
    /// DMA_LOGGING_START: starts dirty logging of device DMA writes into <paramref name="ranges"/>.
    /// Returns the page size the device tracks at (the kernel writes it back): <paramref name="pageSize"/>,
    /// raised to <see cref="MinDmaPageSize"/> when smaller.
    /// </summary>
    /// <exception cref="VfioMigrationException">
    /// ENOTTY without logging support; EINVAL for no ranges, a page size that is not a power of two,
    /// unaligned, empty or overlapping ranges, or logging already started; E2BIG for more than
    /// <see cref="MaxDmaLoggingRanges"/> ranges; EOVERFLOW when a range wraps the address space.
    /// </exception>
    public ulong DmaLoggingStart(IReadOnlyList<VfioDmaRange> ranges, ulong pageSize)
    {
        ArgumentNullException.ThrowIfNull(ranges);
        RequireDmaLogging();
        if (ranges.Count == 0)
        {
            throw new VfioMigrationException(Errno.EINVAL, $"{_name}: DMA_LOGGING_START without ranges");
        }
        if (ranges.Count > MaxDmaLoggingRanges)
        {
            throw new VfioMigrationException(Errno.E2BIG, $"{_name}: DMA_LOGGING_START with {ranges.Count} ranges");
        }
        if (!BitOperations.IsPow2(pageSize))
        {
            throw new VfioMigrationException(Errno.EINVAL, $"{_name}: DMA logging page size {pageSize} is not a power of two");
        }
        foreach (VfioDmaRange range in ranges)
        {
            if (range.Iova % pageSize != 0 || range.Length % pageSize != 0 || range.Length == 0)
            {
                throw new VfioMigrationException(Errno.EINVAL, $"{_name}: DMA logging range {range} is not aligned to {pageSize}");
            }
            if (range.Iova + range.Length < range.Iova)
            {
                throw new VfioMigrationException(Errno.EOVERFLOW, $"{_name}: DMA logging range {range} overflows");
            }
        }
        VfioDmaRange[] sorted = ranges.OrderBy(r => r.Iova).ToArray();
        for (int i = 1; i < sorted.Length; i++)
        {
            if (sorted[i].Iova < sorted[i - 1].Iova + sorted[i - 1].Length)
            {
                throw new VfioMigrationException(Errno.EINVAL, $"{_name}: DMA logging ranges {sorted[i - 1]} and {sorted[i]} overlap");
            }
        }
        ulong trackingPageSize = Math.Max(pageSize, MinDmaPageSize);
        lock (_logLock)
        {
            if (_dirtyLog is not null)
            {
                throw new VfioMigrationException(Errno.EINVAL, $"{_name}: DMA logging already started");
            }
            _dirtyLog = new VfioDmaDirtyLog(sorted, trackingPageSize);
        }
        return trackingPageSize;
    }

    /// <summary>DMA_LOGGING_STOP: stops dirty logging (nothing to do when it is not running).</summary>
    /// <exception cref="VfioMigrationException">ENOTTY without logging support.</exception>
    public void DmaLoggingStop()
    {
        RequireDmaLogging();
        lock (_logLock)
        {
            _dirtyLog = null;
        }
    }

    /// <summary>
    /// DMA_LOGGING_REPORT: the dirty bitmap of [<paramref name="iova"/>, +<paramref name="length"/>) at
    /// <paramref name="pageSize"/> granularity, as 64-bit words (bit n of word n/64 is the n-th page),
    /// clearing what it reports.
    /// </summary>
    /// <exception cref="VfioMigrationException">
    /// ENOTTY without logging support; EINVAL for a page size below 4 KiB or not a power of two, or
    /// when logging is not started; EOVERFLOW when the range wraps.
    /// </exception>
    public ulong[] DmaLoggingReport(ulong iova, ulong length, ulong pageSize)
    {
        RequireDmaLogging();
        if (pageSize < MinDmaPageSize || !BitOperations.IsPow2(pageSize))
        {
            throw new VfioMigrationException(Errno.EINVAL, $"{_name}: DMA logging report page size {pageSize}");
        }
        if (iova + length < iova)
        {
            throw new VfioMigrationException(Errno.EOVERFLOW, $"{_name}: DMA logging report 0x{iova:X}+0x{length:X} overflows");
        }
        lock (_logLock)
        {
            if (_dirtyLog is null)
            {
                throw new VfioMigrationException(Errno.EINVAL, $"{_name}: DMA logging report without DMA_LOGGING_START");
            }
            return _dirtyLog.ReadAndClear(iova, length, pageSize);
        }
    }

    /// <summary>Stops the device's activity and closes its data sessions. Later calls do nothing.</summary>
    public void Dispose()
    {
        lock (_stateLock)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            CloseSessions();
        }
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases the device's own resources; called once, after the sessions are closed.</summary>
    protected virtual void Dispose(bool disposing)
    {
    }

    /// <summary>Logs a device DMA write into guest memory for dirty logging (a no-op while logging is off).</summary>
    protected void RecordDmaWrite(ulong iova, ulong length)
    {
        lock (_logLock)
        {
            _dirtyLog?.MarkDirty(iova, length);
        }
    }

    /// <summary>The stop-copy data length for MIG_DATA_SIZE (an estimate while the device still runs).</summary>
    protected abstract ulong GetStopCopySize();

    /// <summary>Puts the device in its power-on state, running; the data sessions are already closed.</summary>
    protected abstract void ResetDevice();

    /// <summary>The device entered ERROR after a failed arc: stop all activity. The sessions are already closed.</summary>
    protected virtual void OnError()
    {
    }

    /// <summary>Arc STOP→RUNNING: start the device.</summary>
    protected abstract void StopToRunning();

    /// <summary>Arc RUNNING→STOP (devices without P2P): stop all DMA and P2P.</summary>
    protected abstract void RunningToStop();

    /// <summary>Arc STOP→STOP_COPY: open a saving session for the complete state.</summary>
    /// <returns>The source of the session's data.</returns>
    protected abstract IVfioSavingSource StopToStopCopy();

    /// <summary>Arc STOP_COPY→STOP: the saving session has been closed; forget its progress.</summary>
    protected abstract void StopCopyToStop();

    /// <summary>Arc STOP→RESUMING: prepare to take a state.</summary>
    protected abstract void StopToResuming();

    /// <summary>Arc RESUMING→STOP: validate and load <paramref name="data"/>, everything written to the resuming data fd.</summary>
    /// <exception cref="VfioMigrationException">With EINVAL when the data is not a valid state.</exception>
    protected abstract void ResumingToStop(ReadOnlySpan<byte> data);

    /// <summary>Arc RUNNING→RUNNING_P2P (P2P): stop initiating DMA and P2P, keep responding.</summary>
    protected virtual void RunningToRunningP2P() => throw Unsupported(nameof(RunningToRunningP2P));

    /// <summary>Arc RUNNING_P2P→RUNNING (P2P): resume initiating DMA.</summary>
    protected virtual void RunningP2PToRunning() => throw Unsupported(nameof(RunningP2PToRunning));

    /// <summary>Arc RUNNING_P2P→STOP (P2P): stop completely.</summary>
    protected virtual void RunningP2PToStop() => throw Unsupported(nameof(RunningP2PToStop));

    /// <summary>Arc STOP→RUNNING_P2P (P2P): start responding, without initiating DMA.</summary>
    protected virtual void StopToRunningP2P() => throw Unsupported(nameof(StopToRunningP2P));

    /// <summary>Arc RUNNING→PRE_COPY (PRE_COPY): open a precopy saving session, keep running.</summary>
    protected virtual IVfioSavingSource RunningToPreCopy() => throw Unsupported(nameof(RunningToPreCopy));

    /// <summary>Arc PRE_COPY→RUNNING (PRE_COPY): the saving session has been closed; forget its progress.</summary>
    protected virtual void PreCopyToRunning() => throw Unsupported(nameof(PreCopyToRunning));

    /// <summary>Arc PRE_COPY→STOP_COPY (PRE_COPY without P2P): stop; the session then finishes the state.</summary>
    protected virtual void PreCopyToStopCopy() => throw Unsupported(nameof(PreCopyToStopCopy));

    /// <summary>Arc PRE_COPY→PRE_COPY_P2P (both): stop initiating DMA, the session goes on.</summary>
    protected virtual void PreCopyToPreCopyP2P() => throw Unsupported(nameof(PreCopyToPreCopyP2P));

    /// <summary>Arc PRE_COPY_P2P→PRE_COPY (both): resume initiating DMA.</summary>
    protected virtual void PreCopyP2PToPreCopy() => throw Unsupported(nameof(PreCopyP2PToPreCopy));

    /// <summary>Arc PRE_COPY_P2P→RUNNING_P2P (both): the saving session has been closed; forget its progress.</summary>
    protected virtual void PreCopyP2PToRunningP2P() => throw Unsupported(nameof(PreCopyP2PToRunningP2P));

    /// <summary>Arc PRE_COPY_P2P→STOP_COPY (both): stop; the session then finishes the state.</summary>
    protected virtual void PreCopyP2PToStopCopy() => throw Unsupported(nameof(PreCopyP2PToStopCopy));

    /// <summary>Arc RUNNING_P2P→PRE_COPY_P2P (both): open a precopy saving session while P2P quiescent.</summary>
    protected virtual IVfioSavingSource RunningP2PToPreCopyP2P() => throw Unsupported(nameof(RunningP2PToPreCopyP2P));

    private FileDescriptorHandle? PerformArc(VfioDeviceState from, VfioDeviceState to)
    {
        switch (from, to)
        {
            case (VfioDeviceState.Stop, VfioDeviceState.Running):
                StopToRunning();
                return null;
            case (VfioDeviceState.Running, VfioDeviceState.Stop):
                RunningToStop();
                return null;
            case (VfioDeviceState.Running, VfioDeviceState.RunningP2P):
                RunningToRunningP2P();
                return null;
            case (VfioDeviceState.RunningP2P, VfioDeviceState.Running):
                RunningP2PToRunning();
                return null;
            case (VfioDeviceState.RunningP2P, VfioDeviceState.Stop):
                RunningP2PToStop();
                return null;
            case (VfioDeviceState.Stop, VfioDeviceState.RunningP2P):
                StopToRunningP2P();
                return null;
            case (VfioDeviceState.Stop, VfioDeviceState.StopCopy):
                return OpenSaving(StopToStopCopy(), stopCopy: true);
            case (VfioDeviceState.Running, VfioDeviceState.PreCopy):
                return OpenSaving(RunningToPreCopy(), stopCopy: false);
            case (VfioDeviceState.RunningP2P, VfioDeviceState.PreCopyP2P):
                return OpenSaving(RunningP2PToPreCopyP2P(), stopCopy: false);
            case (VfioDeviceState.StopCopy, VfioDeviceState.Stop):
                CloseSessions();
                StopCopyToStop();
                return null;
            case (VfioDeviceState.PreCopy, VfioDeviceState.Running):
                CloseSessions();
                PreCopyToRunning();
                return null;
            case (VfioDeviceState.PreCopyP2P, VfioDeviceState.RunningP2P):
                CloseSessions();
                PreCopyP2PToRunningP2P();
                return null;
            case (VfioDeviceState.PreCopy, VfioDeviceState.PreCopyP2P):
                PreCopyToPreCopyP2P();
                return null;
            case (VfioDeviceState.PreCopyP2P, VfioDeviceState.PreCopy):
                PreCopyP2PToPreCopy();
                return null;
            case (VfioDeviceState.PreCopy, VfioDeviceState.StopCopy):
                PreCopyToStopCopy();
                RequireSaving().EnterStopCopy();
                return null;
            case (VfioDeviceState.PreCopyP2P, VfioDeviceState.StopCopy):
                PreCopyP2PToStopCopy();
                RequireSaving().EnterStopCopy();
                return null;
            case (VfioDeviceState.Stop, VfioDeviceState.Resuming):
                StopToResuming();
                _resuming = new VfioResumingSession(_name);
                return _resuming.OpenDataFd();
            case (VfioDeviceState.Resuming, VfioDeviceState.Stop):
                LoadResumingData();
                return null;
            default:
                throw new InvalidOperationException($"{_name}: no arc {from} -> {to}");
        }
    }

    private FileDescriptorHandle OpenSaving(IVfioSavingSource source, bool stopCopy)
    {
        CloseSessions();
        _saving = new VfioSavingSession(source, stopCopy, _name);
        return _saving.OpenDataFd();
    }

    private VfioSavingSession RequireSaving()
        => _saving ?? throw new InvalidOperationException($"{_name}: no saving session in {_state}");

    private void LoadResumingData()
    {
        VfioResumingSession session = _resuming ?? throw new InvalidOperationException($"{_name}: no resuming session");
        _resuming = null;
        using (session)
        {
            long length = session.Length;
            if (length > int.MaxValue)
            {
                throw new VfioMigrationException(Errno.EFBIG, $"{_name}: {length} bytes of resuming data");
            }
            using MemoryMapping? mapping = session.MapData();
            ResumingToStop(mapping is null ? ReadOnlySpan<byte>.Empty : mapping.GetSpan(0, (int)length));
        }
    }

    private void EnterError()
    {
        _state = VfioDeviceState.Error;
        CloseSessions();
        OnError();
    }

    private void CloseSessions()
    {
        VfioSavingSession? oldSaving = _saving;
        VfioResumingSession? oldResuming = _resuming;
        _saving = null;
        _resuming = null;
        oldSaving?.Dispose();
        oldResuming?.Dispose();
    }

    private void RequireDmaLogging()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!SupportsDmaLogging)
        {
            throw new VfioMigrationException(Errno.ENOTTY, $"{_name}: no DMA dirty logging");
        }
    }

    private VfioMigrationException Unsupported(string arc)
        => new(Errno.EOPNOTSUPP, $"{_name}: arc {arc} is not implemented");
}

using BenchmarkDotNet.Attributes;
using MiniVmm.Migration.Stream;
using MiniVmm.Migration.Transport;
using MiniVmm.Native;
using MiniVmm.Runstate;
using MiniVmm.Vfio;
using MiniVmm.Vfio.Migration;

namespace MiniVmm.Bench;

/// <summary>
/// VFIO device state migrated through QEMU's VFIO migration handler
/// (<see cref="VfioMigrationHandler"/>) over a real socket: a STOP_COPY-only
/// <see cref="DmaEngineDevice"/> with 256 MiB of state (no P2P, no PRE_COPY, so everything moves
/// in the stop-copy phase, the worst case for downtime) and a second device of the same size on
/// the destination. One operation is the handler's part of one migration, each over a new
/// AF_UNIX socketpair:
/// <list type="bullet">
/// <item>source (its own thread, as the migration thread): save_prepare (with the big lock, as
/// QMP <c>migrate</c> does, on the benchmark thread before the migration thread starts),
/// save_setup (big lock not held), then with the big lock held and the VM in finish-migrate:
/// save_live_complete_precopy (STOP→STOP_COPY, the data fd read to EOF into DATA records),
/// save_state (the config) and the flush; the VM then goes to postmigrate and save_cleanup
/// (STOP_COPY→STOP) runs with the big lock, before the connection closes;</item>
/// <item>destination (the benchmark thread, holding its big lock as the loader does, dropping it
/// while waiting for bytes through <see cref="BigLockYieldingStream"/> as the incoming side
/// does): load_setup (→RESUMING), load_state once per body (START, END, FULL payloads, in that
/// order), load_cleanup, then the VM starts (RESUMING→STOP applies the state, STOP→RUNNING) and
/// stops again (→STOP) so the next operation can enter RESUMING.</item>
/// </list>
/// Only the handler's payloads are on the wire (no savevm section headers, no other devices).
/// The time includes the destination's RESUMING→STOP arc, where the emulated device validates
/// and copies the state and takes the SHA-256 digest behind <see cref="DmaEngineDevice.LoadedStateDigest"/>
/// (as <see cref="VfioBenchmarks"/> does).
/// GB/s is 10^9 stream bytes per second: the device's data-fd bytes plus the handler's tags. The
/// DATA records are as large as one read of the saving pipe (at most the pipe's 64 KiB), so
/// their number varies a little; the bytes per operation count the fewest possible records
/// (4097), so the figure is low by at most the record headers of the extra reads (a few
/// hundredths of a percent; GlobalSetup prints the real count of a first run).
/// </summary>
[MemoryDiagnoser]
[ThroughputColumn]
public class VfioHandlerBenchmarks
{
    private const int StateMiB = 256;
    private const int Chunks = StateMiB * 1024 * 1024 / DmaEngineDevice.ChunkSize;

    // What the device's data fd produces: header record, every chunk with its 12-byte record
    // header, registers record, end record (as in VfioBenchmarks).
    private const long DeviceBytes = 36 + Chunks * (12L + DmaEngineDevice.ChunkSize) + 44 + 12;

    // A read of a pipe returns at most its capacity (64 KiB by default), so at least this many DATA records.
    private const int PipeCapacity = 64 * 1024;
    private const long MinRecords = (DeviceBytes + PipeCapacity - 1) / PipeCapacity;

    // START: [SETUP_STATE][END_OF_STATE]; END: [DATA_STATE][size][bytes]... [END_OF_STATE];
    // FULL: [CONFIG_STATE][256-byte config][END_OF_STATE].
    private const long FixedBytes = 16 + 8 + 8 + VfioDeviceConfig.Size + 8;
    private const long RecordHeaderBytes = 16;
    private const long MinStreamBytes = DeviceBytes + MinRecords * RecordHeaderBytes + FixedBytes;

    private static readonly TimeSpan JoinTimeout = TimeSpan.FromMinutes(2);

    private VirtualMachine _sourceVm = null!;
    private DmaEngineDevice _sourceDevice = null!;
    private VfioDeviceConfig _sourceConfig = null!;
    private VfioMigrationHandler _sourceHandler = null!;
    private VirtualMachine _destinationVm = null!;
    private DmaEngineDevice _destinationDevice = null!;
    private VfioDeviceConfig _destinationConfig = null!;
    private VfioMigrationHandler _destinationHandler = null!;
    private byte[] _sourceDigest = null!;
    private long _operations;
    private long _mismatches;
    private Dictionary<string, string> _openFds = null!;

    /// <summary>
    /// Creates both sides, gives the source some DMA history and stops it (the handler's cached
    /// state is STOP), then runs one migration to check it and to list the open descriptors.
    /// </summary>
    [GlobalSetup]
    public void Setup()
    {
        var memory = new DiscardingGuestMemory(1 << 20);
        _sourceVm = new VirtualMachine(initial: RunState.Prelaunch);
        _sourceDevice = new DmaEngineDevice(memory, new DmaEngineOptions
        {
            StateSizeMiB = StateMiB, RunWorker = false, SupportsP2P = false, SupportsPreCopy = false, Seed = 1, Name = "bench-source",
        });
        _sourceConfig = NewConfig(1);
        _sourceHandler = new VfioMigrationHandler(_sourceDevice, "dev0", _sourceVm, _sourceConfig);

        _destinationVm = new VirtualMachine(initial: RunState.InMigrate);
        _destinationDevice = new DmaEngineDevice(memory, new DmaEngineOptions
        {
            StateSizeMiB = StateMiB, RunWorker = false, SupportsP2P = false, SupportsPreCopy = false, Seed = 2, Name = "bench-destination",
        });
        _destinationConfig = NewConfig(2);
        _destinationHandler = new VfioMigrationHandler(_destinationDevice, "dev0", _destinationVm, _destinationConfig);

        if (_sourceDevice.PerformDma(1000) != 1000)
        {
            throw new InvalidOperationException("The source device did not DMA");
        }

        using (_sourceVm.Bql.Acquire())
        {
            _sourceVm.Start().ThrowIfFailed();
            _sourceVm.Stop(RunState.Paused).ThrowIfFailed();
        }

        if (_sourceHandler.CachedState != VfioDeviceState.Stop)
        {
            throw new InvalidOperationException($"The source handler is in {_sourceHandler.CachedState}, not STOP");
        }

        _sourceDigest = _sourceDevice.StateDigest();

        long bytes = Migrate();
        long records = (bytes - DeviceBytes - FixedBytes) / RecordHeaderBytes;
        Console.WriteLine(
            $"// VfioHandler: first migration moved {bytes} stream bytes in {records} DATA records " +
            $"(bytes per operation counts {MinStreamBytes}, {MinRecords} records; {100.0 * (bytes - MinStreamBytes) / bytes:0.000}% more)");
        _openFds = OpenFds();
    }

    /// <summary>Checks every transfer and the descriptors, then releases both sides.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        Dictionary<string, string> openFds = OpenFds();
        byte[] sourceDigest = _sourceDevice.StateDigest();
        byte[]? loaded = _destinationDevice.LoadedStateDigest;
        bool equal = loaded is not null
            && sourceDigest.AsSpan().SequenceEqual(_sourceDigest)
            && loaded.AsSpan().SequenceEqual(sourceDigest)
            && _destinationDevice.StateDigest().AsSpan().SequenceEqual(sourceDigest)
            && _destinationConfig.Space.AsSpan().SequenceEqual(_sourceConfig.Space);
        VfioDeviceState sourceState = _sourceHandler.CachedState;
        VfioDeviceState destinationState = _destinationHandler.CachedState;
        _sourceHandler.Dispose();
        _destinationHandler.Dispose();
        _sourceDevice.Dispose();
        _destinationDevice.Dispose();
        if (!equal || Interlocked.Read(ref _mismatches) != 0)
        {
            throw new InvalidOperationException(
                $"The destination's state digest or config differs from the source's ({Interlocked.Read(ref _mismatches)} of {_operations} migrations differed)");
        }

        if (sourceState != VfioDeviceState.Stop || destinationState != VfioDeviceState.Stop)
        {
            throw new InvalidOperationException($"Devices left in {sourceState} (source) and {destinationState} (destination), expected STOP");
        }

        string[] leaked = [.. openFds.Where(fd => !_openFds.TryGetValue(fd.Key, out string? before) || before != fd.Value).Select(fd => $"{fd.Key} -> {fd.Value}")];
        if (leaked.Length != 0)
        {
            throw new InvalidOperationException($"Descriptors opened since the first migration: {string.Join(", ", leaked)}");
        }
    }

    /// <summary>The handler's part of one migration of the 256 MiB device, source and destination.</summary>
    [Benchmark]
    [BytesPerOperation(MinStreamBytes)]
    public long MigrateThroughHandler256MiB() => Migrate();

    private long Migrate()
    {
        // QMP migrate: save_prepare with the big lock, then the migration thread.
        using (_sourceVm.Bql.Acquire())
        {
            _sourceHandler.SavePrepare();
        }

        using UnixSocketPair pair = UnixSocketPair.Create();
        var source = new SourceSide(this, pair.First);
        var thread = new Thread(source.Run) { IsBackground = true, Name = "bench migration" };
        var reader = new MigrationStreamReader(new BigLockYieldingStream(new FileDescriptorStream(pair.Second, FileAccess.Read), _destinationVm.Bql));
        thread.Start();
        long received;
        bool atEnd;
        try
        {
            using (_destinationVm.Bql.Acquire())
            {
                try
                {
                    _destinationHandler.LoadSetup();
                    _destinationHandler.LoadState(reader, 1); // START: setup
                    _destinationHandler.LoadState(reader, 1); // END: the device data
                    _destinationHandler.LoadState(reader, 1); // FULL: the config
                }
                finally
                {
                    _destinationHandler.LoadCleanup();
                }

                received = reader.Offset;
                _destinationVm.Start().ThrowIfFailed();
                _destinationVm.Stop(RunState.Paused).ThrowIfFailed();
            }
        }
        catch (Exception destinationError)
        {
            // Closing the destination's end fails the source's writes; its thread then ends.
            reader.Dispose();
            Join(thread);
            throw source.Error is null ? destinationError : new AggregateException(source.Error, destinationError);
        }

        Join(thread);
        atEnd = source.Error is null && reader.IsAtEnd; // the source closed after save_cleanup: EOF, nothing more
        reader.Dispose();
        if (source.Error is { } sourceError)
        {
            throw new InvalidOperationException("The source side failed", sourceError);
        }

        if (received != source.BytesWritten || !atEnd)
        {
            throw new InvalidOperationException($"The destination read {received} bytes (at end: {atEnd}), the source wrote {source.BytesWritten}");
        }

        if (source.DeviceBytes != DeviceBytes || received < MinStreamBytes)
        {
            throw new InvalidOperationException($"{source.DeviceBytes} device bytes in {received} stream bytes; expected {DeviceBytes} in at least {MinStreamBytes}");
        }

        _operations++;
        if (_destinationDevice.LoadedStateDigest is not { } loaded || !loaded.AsSpan().SequenceEqual(_sourceDigest))
        {
            Interlocked.Increment(ref _mismatches);
        }

        return received;
    }

    private static void Join(Thread thread)
    {
        if (!thread.Join(JoinTimeout))
        {
            throw new TimeoutException($"The source side did not finish within {JoinTimeout}");
        }
    }

    private static VfioDeviceConfig NewConfig(byte seed)
    {
        var config = new VfioDeviceConfig();
        for (int i = 0; i < config.Space.Length; i++)
        {
            config.Space[i] = (byte)(seed * 31 + i);
        }

        return config;
    }

    /// <summary>
    /// The open sockets, pipes and memfds (the kinds a migration opens: the socketpair, the
    /// saving pipe and the resuming memfd), by number. Other descriptors are left out: the
    /// runtime maps assemblies as the harness needs them.
    /// </summary>
    private static Dictionary<string, string> OpenFds()
    {
        var fds = new Dictionary<string, string>();
        foreach (string path in Directory.GetFileSystemEntries("/proc/self/fd"))
        {
            string? target;
            try
            {
                target = new FileInfo(path).LinkTarget;
            }
            catch (IOException)
            {
                continue; // closed while listed (the listing's own descriptor)
            }

            if (target is not null && (target.StartsWith("socket:", StringComparison.Ordinal)
                || target.StartsWith("pipe:", StringComparison.Ordinal) || target.StartsWith("/memfd:", StringComparison.Ordinal)))
            {
                fds[Path.GetFileName(path)] = target;
            }
        }

        return fds;
    }

    /// <summary>The source's migration thread for one operation; owns its end of the socket.</summary>
    private sealed class SourceSide(VfioHandlerBenchmarks owner, FileDescriptorHandle socket)
    {
        public Exception? Error { get; private set; }

        public long BytesWritten { get; private set; }

        public long DeviceBytes { get; private set; }

        public void Run()
        {
            VirtualMachine vm = owner._sourceVm;
            VfioMigrationHandler handler = owner._sourceHandler;
            var writer = new MigrationStreamWriter(new FileDescriptorStream(socket, FileAccess.Write));
            try
            {
                handler.SaveSetup(writer); // migration thread, big lock not held
                using (vm.Bql.Acquire())
                {
                    // The switchover: VM in finish-migrate, END and FULL sections, flush.
                    vm.StopForceState(RunState.FinishMigrate).ThrowIfFailed();
                    handler.SaveLiveCompletePrecopy(writer);
                    handler.SaveState(writer);
                    writer.Flush();
                    vm.SetRunState(RunState.PostMigrate);
                }

                BytesWritten = writer.BytesWritten;
                DeviceBytes = handler.BytesTransferred;
            }
            catch (Exception error)
            {
                Error = error;
            }
            finally
            {
                // QEMU's migration_cleanup: save_cleanup with the big lock, then the file closes.
                try
                {
                    using (vm.Bql.Acquire())
                    {
                        handler.SaveCleanup();
                    }
                }
                catch (Exception error)
                {
                    Error ??= error;
                }

                try
                {
                    writer.Dispose();
                }
                catch (Exception error)
                {
                    Error ??= error;
                }

                socket.Dispose();
            }
        }
    }
}

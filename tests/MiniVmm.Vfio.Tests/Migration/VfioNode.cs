using MiniVmm.Migration.Control;
using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;
using MiniVmm.Runstate;
using MiniVmm.Vfio.Migration;

namespace MiniVmm.Vfio.Tests.Migration;

/// <summary>
/// One side of an in-process VFIO migration: a VM, one VFIO device with QEMU's handler
/// registered as <c>dev0/vfio</c>, its registry, and the device states of every
/// <c>VFIO_MIGRATION</c> event the VM emitted.
/// </summary>
internal sealed class VfioNode : IDisposable
{
    public const string DeviceId = "dev0";
    public static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    private readonly List<string> _states = [];
    private readonly IDisposable _subscription;

    public VfioNode(
        VfioDevice device, RunState initial, ISwitchoverAck? switchoverAck = null, byte configSeed = 1, bool coordinated = false,
        bool ballastFirst = false)
    {
        if (ballastFirst)
        {
            Registry.RegisterLive("ballast", 0, 1, Ballast);
        }

        Device = device;
        Vm = new VirtualMachine(initial: initial);
        if (coordinated)
        {
            Coordinator = new MigrationCoordinator(Registry, Vm, new SavevmOptions());
            switchoverAck = Coordinator;
        }

        for (int i = 0; i < Config.Space.Length; i++)
        {
            Config.Space[i] = (byte)(configSeed * 31 + i);
        }

        Handler = new VfioMigrationHandler(device, DeviceId, Vm, Config, memory: null, switchoverAck);
        Handler.Register(Registry);
        if (!ballastFirst)
        {
            Registry.RegisterLive("ballast", 0, 1, Ballast);
        }

        _subscription = Vm.Events.Subscribe(e =>
        {
            if (e.Name == "VFIO_MIGRATION")
            {
                lock (_states)
                {
                    _states.Add($"{e.Data?["device-state"]}");
                }
            }
        });
    }

    public VirtualMachine Vm { get; }

    /// <summary>RAM's stand-in section.</summary>
    public Ballast Ballast { get; } = new();

    /// <summary>The VM's migration coordinator (QMP's view), when the node was made with one.</summary>
    public MigrationCoordinator? Coordinator { get; }
    public VfioDevice Device { get; }
    public VfioMigrationHandler Handler { get; }
    public VfioDeviceConfig Config { get; } = new();
    public SaveStateRegistry Registry { get; } = new();
    public DmaEngineDevice Engine => (DmaEngineDevice)Device;

    /// <summary>The device-state of every VFIO_MIGRATION event so far.</summary>
    public string[] States
    {
        get
        {
            lock (_states)
            {
                return [.. _states];
            }
        }
    }

    public void ClearStates()
    {
        lock (_states)
        {
            _states.Clear();
        }
    }

    public static DmaEngineDevice NewEngine(RecordingGuestMemory memory, VfioMigrationFlags flags, ulong seed, bool worker = false, int sizeMiB = 1) =>
        new(memory, new DmaEngineOptions
        {
            StateSizeMiB = sizeMiB,
            SupportsP2P = flags.HasFlag(VfioMigrationFlags.P2P),
            SupportsPreCopy = flags.HasFlag(VfioMigrationFlags.PreCopy),
            RunWorker = worker,
            Seed = seed,
        });

    /// <summary>A running source: the VM is started and the boot's events are forgotten.</summary>
    public static VfioNode RunningSource(VfioDevice device)
    {
        var node = new VfioNode(device, RunState.Prelaunch);
        using (node.Vm.Bql.Acquire())
        {
            node.Vm.Start().ThrowIfFailed();
        }

        node.ClearStates();
        return node;
    }

    /// <summary>A destination waiting in <c>inmigrate</c>.</summary>
    public static VfioNode Destination(VfioDevice device, ISwitchoverAck? switchoverAck = null) =>
        new(device, RunState.InMigrate, switchoverAck, configSeed: 2);

    /// <summary>
    /// Starts an outgoing migration as QMP <c>migrate</c> does (save_prepare with the big lock,
    /// then the migration thread) over the stream <paramref name="connect"/> returns.
    /// </summary>
    public MigrationSession Migrate(Func<Stream> connect, MigrationParameters? parameters = null)
    {
        using (Vm.Bql.Acquire())
        {
            foreach (SaveStateEntry entry in Registry.Entries)
            {
                entry.Handlers?.SavePrepare();
            }
        }

        var session = new MigrationSession(
            Registry, Vm, new SavevmOptions(), parameters ?? new MigrationParameters { MaxBandwidth = 1L << 40 }, MigrationCapabilities.None);
        session.Start(_ => connect());
        return session;
    }

    /// <summary>Migrates into a MemoryStream and returns its bytes once the migration has finished.</summary>
    public byte[] MigrateToBytes(out MigrationSession session)
    {
        var transport = new MemoryStream();
        session = Migrate(() => transport);
        WaitFinished(session);
        return transport.ToArray();
    }

    public static void WaitFinished(MigrationSession session) =>
        Assert.That(session.Finished.Wait(Wait), Is.True, $"the migration did not finish within {Wait}; status {session.Status}");

    /// <summary>Loads <paramref name="transport"/> as the incoming side does and starts the VM.</summary>
    public void LoadAndStart(Stream transport)
    {
        using (Vm.Bql.Acquire())
        {
            LoadHeld(transport);
            Vm.Start().ThrowIfFailed();
        }
    }

    /// <summary>Loads a stream with the big lock held (the VM is not started).</summary>
    public LoadResult Load(Stream transport)
    {
        using BigLock.Scope held = Vm.Bql.Acquire();
        return LoadHeld(transport);
    }

    private LoadResult LoadHeld(Stream transport)
    {
        using var reader = new MigrationStreamReader(transport);
        return new SaveStateLoader(Registry, new SavevmOptions(), Vm.Bql).Load(reader);
    }

    public void Start()
    {
        using (Vm.Bql.Acquire())
        {
            Vm.Start().ThrowIfFailed();
        }
    }

    public void Dispose()
    {
        _subscription.Dispose();
        Coordinator?.Dispose();
        Handler.Dispose();
        Device.Dispose();
    }
}

/// <summary>
/// RAM's stand-in: 1 MiB of filler per iteration, always one more MiB pending. The migration
/// thread's switchover threshold is the bandwidth of the last 100 ms window times the downtime
/// limit, so without a companion that moves data (as RAM does) a STOP_COPY-only device or a
/// stopped VM would never reach the switchover.
/// </summary>
internal sealed class Ballast : ISaveVmHandlers
{
    private const int Piece = 1 << 20;
    private static readonly byte[] Filler = new byte[Piece];
    private long _iterations;

    /// <summary>How many iteration rounds reached this section.</summary>
    public long Iterations => Interlocked.Read(ref _iterations);

    public SaveVmHandlerFeatures Features => SaveVmHandlerFeatures.Live;

    public void SaveSetup(MigrationStreamWriter stream) => stream.PutBe32(0);

    public IterationOutcome SaveLiveIterate(MigrationStreamWriter stream)
    {
        Interlocked.Increment(ref _iterations);
        stream.PutBe32(Piece);
        stream.PutBuffer(Filler);
        return IterationOutcome.MoreData;
    }

    public PendingSize StatePendingEstimate() => new(Piece, 0);

    public void SaveLiveCompletePrecopy(MigrationStreamWriter stream) => stream.PutBe32(0);

    public void LoadState(MigrationStreamReader stream, int versionId) => stream.Skip(stream.GetBe32());
}

/// <summary>A transport that blocks writes (once <paramref name="blockAfter"/> bytes went through) until disposed, then fails them.</summary>
internal sealed class BlockingWriteStream(long blockAfter) : Stream
{
    private readonly ManualResetEventSlim _released = new(false);
    private long _written;

    public ManualResetEventSlim Blocked { get; } = new(false);

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (Interlocked.Read(ref _written) + buffer.Length > blockAfter)
        {
            Blocked.Set();
            _released.Wait();
            throw new IOException("the transport was shut down");
        }

        Interlocked.Add(ref _written, buffer.Length);
    }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        _released.Set();
        base.Dispose(disposing);
    }
}

/// <summary>A write-only transport that keeps the bytes and fails writes once <paramref name="fail"/> says so (e.g. once the VM stopped for the switchover).</summary>
internal sealed class FailingWhenStream(Func<bool> fail) : Stream
{
    private readonly MemoryStream _bytes = new();
    private int _failures;

    public int Failures => Volatile.Read(ref _failures);

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        Check();
        _bytes.Write(buffer);
    }

    public override void Flush() => Check();

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    private void Check()
    {
        if (fail())
        {
            Interlocked.Increment(ref _failures);
            throw new IOException("connection reset by peer (injected)");
        }
    }
}

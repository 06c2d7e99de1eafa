using MiniVmm.Migration.Savevm;
using MiniVmm.Migration.Stream;
using MiniVmm.Runstate;

namespace MiniVmm.Migration.Tests.Savevm;

/// <summary>The destination's handler calls: load_setup, load_state per section, load_cleanup, and the big lock.</summary>
[TestFixture]
public sealed class SaveStateLoaderTests
{
    private readonly CallLog _sourceLog = new();
    private readonly CallLog _log = new();
    private readonly BigLock _sourceBql = new();
    private readonly BigLock _bql = new();

    [SetUp]
    public void ClearLogs()
    {
        _sourceLog.Clear();
        _log.Clear();
    }

    /// <summary>A source stream: ram (v3, two iteration rounds), vfio (v1, live + state), legacy (v1, state only).</summary>
    private byte[] SourceStream()
    {
        var registry = new SaveStateRegistry();
        var ram = new RecordingHandlers("ram", _sourceLog, _sourceBql);
        ram.IterationOutcomes.Enqueue(IterationOutcome.MoreData);
        registry.RegisterLive("ram", 0, 3, ram);
        registry.RegisterLive("vfio", 0, 1, new RecordingHandlers(
            "vfio", _sourceLog, _sourceBql, SaveVmHandlerFeatures.Live | SaveVmHandlerFeatures.SaveState));
        registry.RegisterLive("legacy", 0, 1, new RecordingHandlers("legacy", _sourceLog, _sourceBql, SaveVmHandlerFeatures.SaveState));
        return SavevmHarness.Save(registry, bql: _sourceBql);
    }

    private sealed record Destination(
        SaveStateRegistry Registry, RecordingHandlers Ram, RecordingHandlers Vfio, RecordingHandlers Legacy, RecordingHandlers Idle);

    /// <summary>
    /// The destination: newer versions than the source (ram v5, vfio v2), and an inactive
    /// "idle" entry the stream does not mention, registered first.
    /// </summary>
    private Destination DestinationRegistry()
    {
        var registry = new SaveStateRegistry();
        var idle = new RecordingHandlers("idle", _log, _bql) { Active = false };
        var ram = new RecordingHandlers("ram", _log, _bql);
        var vfio = new RecordingHandlers("vfio", _log, _bql, SaveVmHandlerFeatures.Live | SaveVmHandlerFeatures.SaveState);
        var legacy = new RecordingHandlers("legacy", _log, _bql, SaveVmHandlerFeatures.SaveState);
        registry.RegisterLive("idle", 0, 1, idle);
        registry.RegisterLive("ram", 0, 5, ram);
        registry.RegisterLive("vfio", 0, 2, vfio);
        registry.RegisterLive("legacy", 0, 1, legacy);
        return new Destination(registry, ram, vfio, legacy, idle);
    }

    [Test]
    public void LoadSetupRunsForActiveEntriesBeforeAnySectionAndCleanupForAllAtTheEnd()
    {
        byte[] stream = SourceStream();
        Destination destination = DestinationRegistry();

        LoadResult result = SavevmHarness.Load(destination.Registry, stream, bql: _bql);

        Assert.That(result.Sections, Is.EqualTo(9));
        Assert.That(_log.Names(), Is.EqualTo(new[]
        {
            "ram.LoadSetup", "vfio.LoadSetup", "legacy.LoadSetup",
            "ram.LoadState", "vfio.LoadState",
            "ram.LoadState", "ram.LoadState", "vfio.LoadState",
            "ram.LoadState", "vfio.LoadState",
            "vfio.LoadState", "legacy.LoadState",
            "idle.LoadCleanup", "ram.LoadCleanup", "vfio.LoadCleanup", "legacy.LoadCleanup",
        }));
    }

    [Test]
    public void LoadStateGetsEachSectionBodyWithTheVersionFromTheStream()
    {
        byte[] stream = SourceStream();
        Destination destination = DestinationRegistry();

        SavevmHarness.Load(destination.Registry, stream, bql: _bql);

        Assert.That(destination.Ram.Received, Is.EqualTo(new[] { "ram:setup", "ram:iterate1", "ram:iterate2", "ram:complete" }));
        Assert.That(destination.Vfio.Received, Is.EqualTo(new[] { "vfio:setup", "vfio:iterate1", "vfio:complete", "vfio:state" }));
        Assert.That(destination.Legacy.Received, Is.EqualTo(new[] { "legacy:state" }));
        Assert.That(destination.Idle.Received, Is.Empty);
        IReadOnlyList<HandlerCall> loads = [.. _log.Calls.Where(c => c.Callback == nameof(ISaveVmHandlers.LoadState))];
        Assert.That(loads.Where(c => c.Handler == "ram").Select(c => c.Version), Is.All.EqualTo(3), "ram: the source's v3, not the local v5");
        Assert.That(loads.Where(c => c.Handler == "vfio").Select(c => c.Version), Is.All.EqualTo(1));
    }

    [Test]
    public void EveryDestinationCallbackRunsWithTheBigLockOnTheLoadingThread()
    {
        byte[] stream = SourceStream();
        Destination destination = DestinationRegistry();

        SavevmHarness.Load(destination.Registry, stream, bql: _bql);

        Assert.That(_log.Calls, Is.Not.Empty);
        Assert.That(_log.Calls.Select(c => (c.BigLockHeld, c.ThreadId)), Is.All.EqualTo((true, Environment.CurrentManagedThreadId)));
    }

    [Test]
    public void LoadWithoutTheBigLockThrowsBeforeReadingOrCallingAnything()
    {
        byte[] stream = SourceStream();
        Destination destination = DestinationRegistry();
        using var reader = new MigrationStreamReader(new MemoryStream(stream, writable: false));
        var loader = new SaveStateLoader(destination.Registry, new SavevmOptions(), _bql);

        Assert.That(() => loader.Load(reader), Throws.TypeOf<BigLockAssertionException>());
        Assert.That(reader.Offset, Is.Zero);
        Assert.That(_log.Calls, Is.Empty);
    }

    [Test]
    public void LoadCleanupRunsForEveryEntryAfterADeviceFailure()
    {
        byte[] stream = SourceStream();
        Destination destination = DestinationRegistry();
        destination.Vfio.LoadStateFailure = new InvalidDataException("vfio device state rejected");

        MigrationLoadException error = SavevmHarness.LoadFails(destination.Registry, stream);

        Assert.That(error.Message, Does.StartWith("error while loading state for instance 0x0 of device 'vfio': vfio device state rejected"));
        Assert.That(_log.Names(nameof(ISaveVmHandlers.LoadCleanup)), Is.EqualTo(new[]
        {
            "idle.LoadCleanup", "ram.LoadCleanup", "vfio.LoadCleanup", "legacy.LoadCleanup",
        }));
        Assert.That(destination.Legacy.Received, Is.Empty, "nothing is loaded after the failure");
    }

    [Test]
    public void AFailingPartSectionIsReportedWithItsSectionId()
    {
        byte[] stream = SourceStream();
        Destination destination = DestinationRegistry();
        var failing = new FailOnSecondLoad("ram", _log, _bql);
        var registry = new SaveStateRegistry();
        registry.RegisterLive("ram", 0, 5, failing);
        registry.RegisterLive("vfio", 0, 2, destination.Vfio);
        registry.RegisterLive("legacy", 0, 1, destination.Legacy);

        MigrationLoadException error = SavevmHarness.LoadFails(registry, stream);

        Assert.That(error.Message, Does.StartWith("error while loading state section id 0(ram): second body refused"));
        Assert.That(error.Section, Is.EqualTo(new SectionContext(SectionType.Part, 0, "ram", 0)));
    }

    [Test]
    public void LoadCleanupRunsAfterAHeaderFailureToo()
    {
        Destination destination = DestinationRegistry();
        byte[] bytes = new StreamBuilder().Header(version: 4).ToArray();

        SavevmHarness.LoadFails(destination.Registry, bytes);

        Assert.That(_log.Names(), Is.EqualTo(new[] { "idle.LoadCleanup", "ram.LoadCleanup", "vfio.LoadCleanup", "legacy.LoadCleanup" }));
    }

    [Test]
    public void AFailingLoadSetupStopsTheLoadNamingTheDevice()
    {
        byte[] stream = SourceStream();
        Destination destination = DestinationRegistry();
        destination.Vfio.LoadSetupFailure = new InvalidOperationException("no device");

        MigrationLoadException error = SavevmHarness.LoadFails(destination.Registry, stream);

        Assert.That(error.Message, Does.StartWith("Load state of device vfio failed: no device"));
        Assert.That(error.Offset, Is.EqualTo(StreamBuilder.StandardHeaderLength));
        Assert.That(_log.Names(), Is.EqualTo(new[]
        {
            "ram.LoadSetup", "vfio.LoadSetup",
            "idle.LoadCleanup", "ram.LoadCleanup", "vfio.LoadCleanup", "legacy.LoadCleanup",
        }));
    }

    [Test]
    public void EntriesWithoutASectionInTheStreamAreLeftAlone()
    {
        Destination destination = DestinationRegistry();
        var counter = new CounterDevice { Count = 77 };
        destination.Registry.RegisterVMState(CounterDevice.Vmsd, counter);
        byte[] bytes = new StreamBuilder().StandardHeader().Eof().ToArray();

        LoadResult result = SavevmHarness.Load(destination.Registry, bytes);

        Assert.That(result.Sections, Is.Zero);
        Assert.That(counter.Count, Is.EqualTo(77u));
        Assert.That(destination.Ram.Received, Is.Empty);
    }

    /// <summary>Recording handlers whose second LoadState throws.</summary>
    private sealed class FailOnSecondLoad(string name, CallLog log, BigLock bql) : ISaveVmHandlers
    {
        private readonly RecordingHandlers _inner = new(name, log, bql);
        private int _loads;

        public SaveVmHandlerFeatures Features => SaveVmHandlerFeatures.Live;

        public void LoadState(MigrationStreamReader stream, int versionId)
        {
            _inner.LoadState(stream, versionId);
            if (++_loads == 2)
            {
                throw new InvalidDataException("second body refused");
            }
        }
    }
}

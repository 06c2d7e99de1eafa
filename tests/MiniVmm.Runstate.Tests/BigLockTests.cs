namespace MiniVmm.Runstate.Tests;

[TestFixture]
public sealed class BigLockTests
{
    private static readonly TimeSpan ShortWait = TimeSpan.FromMilliseconds(20);

    /// <summary>Runs <paramref name="body"/> on a new thread, waits for it and rethrows what it threw.</summary>
    private static T OnOtherThread<T>(Func<T> body)
    {
        T result = default!;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                result = body();
            }
            catch (Exception e)
            {
                error = e;
            }
        });
        thread.Start();
        thread.Join();
        return error is null ? result : throw new AggregateException(error);
    }

    [Test]
    public void VmOperationsWithoutTheLockThrow()
    {
        var vm = new VirtualMachine(initial: RunState.Running);

        Assert.Multiple(() =>
        {
            Assert.That(() => vm.Start(), Throws.TypeOf<BigLockAssertionException>().With.Message.Contains("Start"));
            Assert.That(
                () => vm.Stop(RunState.Paused),
                Throws.TypeOf<BigLockAssertionException>().With.Message.Contains("Stop"));
            Assert.That(
                () => vm.StopForceState(RunState.Paused),
                Throws.TypeOf<BigLockAssertionException>().With.Message.Contains("StopForceState"));
            Assert.That(
                () => vm.SetRunState(RunState.Paused),
                Throws.TypeOf<BigLockAssertionException>().With.Message.Contains("SetRunState"));
        });
        Assert.That(vm.State, Is.EqualTo(RunState.Running));
    }

    [Test]
    public void VmOperationsWithTheLockHeldByAnotherThreadThrow()
    {
        var vm = new VirtualMachine();
        using BigLock.Scope held = vm.Bql.Acquire();

        Exception? thrown = OnOtherThread(() =>
        {
            try
            {
                vm.Start();
                return null;
            }
            catch (Exception e)
            {
                return e;
            }
        });

        Assert.That(thrown, Is.TypeOf<BigLockAssertionException>());
        Assert.That(vm.State, Is.EqualTo(RunState.Prelaunch));
    }

    [Test]
    public void IsHeldOnlyInsideTheScopeAndOnlyOnTheOwningThread()
    {
        var bql = new BigLock();
        Assert.That(bql.IsHeld, Is.False);

        using (bql.Acquire())
        {
            Assert.That(bql.IsHeld, Is.True);
            Assert.That(OnOtherThread(() => bql.IsHeld), Is.False);
        }

        Assert.That(bql.IsHeld, Is.False);
    }

    [Test]
    public void AssertHeldAndAssertNotHeldThrowWhenWrong()
    {
        var bql = new BigLock();

        Assert.That(
            () => bql.AssertHeld("save_complete"),
            Throws.TypeOf<BigLockAssertionException>()
                .With.Message.EqualTo("save_complete must run with the big lock held"));
        Assert.That(() => bql.AssertNotHeld("save_iterate"), Throws.Nothing);

        using (bql.Acquire())
        {
            Assert.That(() => bql.AssertHeld("save_complete"), Throws.Nothing);
            Assert.That(
                () => bql.AssertNotHeld("save_iterate"),
                Throws.TypeOf<BigLockAssertionException>()
                    .With.Message.EqualTo("save_iterate must run without the big lock"));
        }
    }

    [Test]
    public void AssertHeldNamesTheCallingMember()
    {
        var bql = new BigLock();
        Assert.That(
            () => bql.AssertHeld(),
            Throws.TypeOf<BigLockAssertionException>().With.Message.Contains(nameof(AssertHeldNamesTheCallingMember)));
    }

    [Test]
    public void AcquiringTwiceOnOneThreadThrowsAndKeepsTheFirstHold()
    {
        var bql = new BigLock();
        using BigLock.Scope first = bql.Acquire();

        Assert.That(() => bql.Acquire(), Throws.TypeOf<LockRecursionException>());
        Assert.That(() => bql.TryAcquire(ShortWait, out _), Throws.TypeOf<LockRecursionException>());
        Assert.That(bql.IsHeld, Is.True);

        first.Dispose();
        Assert.That(bql.IsHeld, Is.False);
        Assert.That(OnOtherThread(() => CanTakeBriefly(bql)), Is.True);
    }

    [Test]
    public void DisposingAScopeTwiceReleasesOnlyOnce()
    {
        var bql = new BigLock();
        BigLock.Scope first = bql.Acquire();
        first.Dispose();
        first.Dispose();
        Assert.That(bql.IsHeld, Is.False);

        using BigLock.Scope second = bql.Acquire();
        first.Dispose();

        Assert.That(bql.IsHeld, Is.True, "a stale scope's dispose released a later hold");
        Assert.That(OnOtherThread(() => CanTakeBriefly(bql)), Is.False);
    }

    [Test]
    public void AnotherThreadBlocksWhileTheLockIsHeldAndGetsItAfterRelease()
    {
        var bql = new BigLock();
        using var bTriedWhileHeld = new ManualResetEventSlim();
        using var aReleased = new ManualResetEventSlim();
        bool bGotItWhileHeld = true;
        bool bHeldAfterRelease = false;
        Exception? bError = null;

        BigLock.Scope aScope = bql.Acquire();
        var threadB = new Thread(() =>
        {
            try
            {
                bGotItWhileHeld = bql.TryAcquire(ShortWait, out BigLock.Scope? early);
                early?.Dispose();
                bTriedWhileHeld.Set();

                aReleased.Wait();
                using (bql.Acquire())
                {
                    bHeldAfterRelease = bql.IsHeld;
                }
            }
            catch (Exception e)
            {
                bError = e;
            }
        });
        threadB.Start();

        bTriedWhileHeld.Wait();
        aScope.Dispose();
        aReleased.Set();
        threadB.Join();

        Assert.That(bError, Is.Null);
        Assert.That(bGotItWhileHeld, Is.False, "B got the lock while A held it");
        Assert.That(bHeldAfterRelease, Is.True, "B did not get the lock after A released it");
    }

    [Test]
    public void TryAcquireSucceedsWhenTheLockIsFree()
    {
        var bql = new BigLock();

        Assert.That(bql.TryAcquire(ShortWait, out BigLock.Scope? scope), Is.True);
        Assert.That(scope, Is.Not.Null);
        Assert.That(bql.IsHeld, Is.True);
        scope!.Dispose();
        Assert.That(bql.IsHeld, Is.False);
    }

    [Test]
    public void TheLockMakesANonAtomicCounterExact()
    {
        const int Threads = 4;
        const int IncrementsPerThread = 100_000;
        var bql = new BigLock();
        var counter = new int[1];
        using var barrier = new Barrier(Threads);
        var errors = new List<Exception>();

        var threads = Enumerable.Range(0, Threads).Select(_ => new Thread(() =>
        {
            try
            {
                barrier.SignalAndWait();
                for (int i = 0; i < IncrementsPerThread; i++)
                {
                    using (bql.Acquire())
                    {
                        int value = counter[0];
                        counter[0] = value + 1;
                    }
                }
            }
            catch (Exception e)
            {
                lock (errors)
                {
                    errors.Add(e);
                }
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());

        Assert.That(errors, Is.Empty);
        Assert.That(counter[0], Is.EqualTo(Threads * IncrementsPerThread));
    }

    [Test]
    public void ReleaseTemporarilyLetsAnotherThreadInAndRetakesOnDispose()
    {
        var bql = new BigLock();
        using BigLock.Scope outer = bql.Acquire();

        using (bql.ReleaseTemporarily())
        {
            Assert.That(bql.IsHeld, Is.False);
            Assert.That(OnOtherThread(() => CanTakeBriefly(bql)), Is.True, "another thread could not take the released lock");
        }

        Assert.That(bql.IsHeld, Is.True);
        Assert.That(OnOtherThread(() => CanTakeBriefly(bql)), Is.False, "the lock was not taken back");
    }

    [Test]
    public void DisposingAReleaseTwiceRetakesOnlyOnce()
    {
        var bql = new BigLock();
        BigLock.Scope outer = bql.Acquire();

        BigLock.Release release = bql.ReleaseTemporarily();
        release.Dispose();
        release.Dispose();
        Assert.That(bql.IsHeld, Is.True);

        outer.Dispose();
        Assert.That(bql.IsHeld, Is.False);
        Assert.That(OnOtherThread(() => CanTakeBriefly(bql)), Is.True, "the lock stayed held after the outer scope ended");
    }

    [Test]
    public void ReleaseTemporarilyWithoutTheLockThrows()
    {
        var bql = new BigLock();
        Assert.That(() => bql.ReleaseTemporarily(), Throws.TypeOf<BigLockAssertionException>());
        Assert.That(bql.IsHeld, Is.False);
    }

    [Test]
    public void HandlersRunWithTheLockHeldOnStartAndStop()
    {
        var vm = new VirtualMachine();
        var heldDuringCalls = new List<bool>();
        vm.StateChangeHandlers.Register(
            (_, _) =>
            {
                heldDuringCalls.Add(vm.Bql.IsHeld);
                vm.Bql.AssertHeld();
            },
            prepare: (_, _) =>
            {
                heldDuringCalls.Add(vm.Bql.IsHeld);
                vm.Bql.AssertHeld();
            });

        VmStateChangeResult start = vm.Locked(v => v.Start());
        VmStateChangeResult stop = vm.Locked(v => v.Stop(RunState.Paused));

        Assert.That(start.Succeeded && stop.Succeeded, Is.True);
        Assert.That(heldDuringCalls, Is.EqualTo(new[] { true, true, true, true }));
    }

    /// <summary>Whether the calling thread can take the lock right now (it releases it again).</summary>
    private static bool CanTakeBriefly(BigLock bql)
    {
        if (!bql.TryAcquire(ShortWait, out BigLock.Scope? scope))
        {
            return false;
        }

        scope.Dispose();
        return true;
    }
}

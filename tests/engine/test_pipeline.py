from pathlib import Path

import pytest
import yaml

from pix2point.engine.pipeline import PipelineError, load_pipeline


def test_defaults_profile_and_overrides_merge_in_order(toy):
    assert load_pipeline(toy.pipeline).stages["numbers"].params.count == 5
    assert load_pipeline(toy.pipeline, "small").stages["numbers"].params.count == 2
    pipeline = load_pipeline(toy.pipeline, "small", ["numbers.count=7", "total.scale=3"])
    assert pipeline.stages["numbers"].params.count == 7
    assert pipeline.stages["total"].params.scale == 3
    assert list(pipeline.stages) == ["numbers", "total"]


def test_unknown_param_names_stage_and_key(toy):
    with pytest.raises(PipelineError, match=r"stage 'total': unknown param 'scael'"):
        load_pipeline(toy.pipeline, overrides=["total.scael=2"])


def test_ill_typed_param_names_stage_and_key(toy):
    with pytest.raises(PipelineError, match=r"stage 'numbers': param 'count'.*integer.*'many'"):
        load_pipeline(toy.pipeline, overrides=["numbers.count=many"])


def test_default_names_the_stages_own_params_unless_the_file_has_a_profile_of_that_name(toy, tmp_path):
    """`--profile default` is what results pages and check_results.sh call a run without a profile."""
    named = load_pipeline(toy.pipeline, "default")
    assert named.profile is None and named.stages["numbers"].params.count == 5
    document = yaml.safe_load(toy.pipeline.read_text())
    document["profiles"]["default"] = {"numbers": {"count": 3}}
    own = tmp_path / "pipeline.yaml"
    own.write_text(yaml.safe_dump(document))
    assert load_pipeline(own, "default").stages["numbers"].params.count == 3


def test_unknown_profile_lists_the_known_ones(toy):
    with pytest.raises(PipelineError, match=r"unknown profile 'huge'; profiles: small"):
        load_pipeline(toy.pipeline, "huge")


@pytest.mark.parametrize("override, message", [
    ("nostage.count=1", "unknown stage 'nostage'"),
    ("numbers=1", "expected stage.key=value"),
    ("numbers.count", "expected stage.key=value"),
])
def test_malformed_overrides_are_errors(toy, override, message):
    with pytest.raises(PipelineError, match=message):
        load_pipeline(toy.pipeline, overrides=[override])


def test_missing_pipeline_file_is_named(tmp_path: Path):
    with pytest.raises(PipelineError, match="pipeline file not found: .*nope.yaml"):
        load_pipeline(tmp_path / "nope.yaml")


def test_unknown_input_and_cycles_are_errors(toy):
    toy.pipeline.write_text(toy.pipeline.read_text().replace("inputs: [numbers]", "inputs: [nothing]"))
    with pytest.raises(PipelineError, match="stage 'total' has unknown input 'nothing'"):
        load_pipeline(toy.pipeline)
    toy.pipeline.write_text(
        f"stages:\n  a: {{module: {toy.package}.numbers, inputs: [b]}}\n  b: {{module: {toy.package}.numbers, inputs: [a]}}\n"
    )
    with pytest.raises(PipelineError, match="cycle"):
        load_pipeline(toy.pipeline)


def test_the_project_pipeline_and_its_profiles_validate():
    root = Path(__file__).resolve().parents[2]
    profiles = yaml.safe_load((root / "pipeline.yaml").read_text())["profiles"]
    assert {"smoke", "scannet", "modelnet40", "shapenet55", "scanobjectnn"} <= set(profiles)
    for profile in (None, *profiles):
        pipeline = load_pipeline(root / "pipeline.yaml", profile)
        order = list(pipeline.stages)
        assert order.index("scenes") < order.index("features2d") < order.index("pairs") < order.index("pretrain")
        assert order.index("pretrain") < order.index("finetune") < order.index("evaluate")


def test_the_benchmark_profile_gives_each_comparison_seeds_and_detection_the_steps_and_rooms_it_needs():
    from pix2point.io.scannet_split import grouped_random_split

    root = Path(__file__).resolve().parents[2]
    stages = load_pipeline(root / "pipeline.yaml", "benchmark").stages
    scenes = stages["scenes"].params
    names = [f"scene{index:04d}_00" for index in range(scenes.synthetic.num_scenes)]
    assert list(grouped_random_split(names, scenes.val_fraction, scenes.split_seed).values()).count("val") >= 8
    detect = stages["detect"].params
    assert detect.steps >= 3000 and detect.label_fractions == [1.0] and len(detect.seeds) >= 3
    assert detect.eval_every < detect.steps and detect.checkpoint_every < detect.steps
    for stage in ("finetune", "classify", "finetune_objects"):
        assert len(stages[stage].params.seeds) >= 3, stage
    default = load_pipeline(root / "pipeline.yaml", None).stages
    # Where the default profile cut for its 30 minutes, the benchmark trains longer, never shorter.
    for stage, key in (("finetune", "steps"), ("detect", "steps"), ("classify", "epochs"), ("pretrain_mae", "steps"),
                       ("pretrain_i2p_mae", "steps"), ("finetune_objects", "epochs"), ("finetune_objects", "voting"),
                       ("fewshot", "folds")):
        assert getattr(stages[stage].params, key) >= getattr(default[stage].params, key), (stage, key)
    assert stages["pretrain_i2p_mae"].params.steps > default["pretrain_i2p_mae"].params.steps
    assert stages["pretrain_i2p_mae"].params.masking == "guided" and stages["pretrain_mae"].params.masking == "random"


def test_ppkt_s3dis_pipeline_reuses_the_scannet_profiles_pretraining_and_finetunes_on_s3dis():
    from pix2point.engine.runner import compute_keys

    root = Path(__file__).resolve().parents[2]
    s3dis = load_pipeline(root / "pipelines" / "ppkt_s3dis.yaml")
    scannet_keys, s3dis_keys = compute_keys(load_pipeline(root / "pipeline.yaml", "scannet")), compute_keys(s3dis)
    assert all(s3dis_keys[stage] == scannet_keys[stage] for stage in ("scenes", "features2d", "pairs", "pretrain"))
    assert s3dis.stages["s3dis"].params.source == "s3dis" and s3dis.stages["s3dis"].params.s3dis_val_area == 5
    assert s3dis.stages["finetune"].input_names == {"scenes": "s3dis", "pretrain": "pretrain"}
    assert s3dis.stages["evaluate"].input_names["scenes"] == "s3dis"


def test_i2p_mae_seeds_pipeline_reuses_the_benchmark_pretrainings_and_adds_two_seeds_of_each():
    from pix2point.engine.runner import compute_keys

    root = Path(__file__).resolve().parents[2]
    seeds = load_pipeline(root / "pipelines" / "i2p_mae_seeds.yaml")
    benchmark_keys, seeds_keys = compute_keys(load_pipeline(root / "pipeline.yaml", "benchmark")), compute_keys(seeds)
    assert all(seeds_keys[stage] == benchmark_keys[stage] for stage in ("objects", "views2d", "pretrain_mae", "pretrain_i2p_mae"))
    evaluate = seeds.stages["evaluate_objects"]
    pretrainings = [seeds.stages[name].params for name in evaluate.inputs if name != "objects"]
    by_kind = {}
    for params in pretrainings:
        by_kind.setdefault((params.masking, params.target_2d), []).append(params)
    assert {kind: sorted(p.seed for p in runs) for kind, runs in by_kind.items()} == {
        ("random", False): [0, 1, 2], ("guided", True): [0, 1, 2]}
    # Seeds are all that differ from the benchmark's pretraining of each kind.
    benchmark = load_pipeline(root / "pipeline.yaml", "benchmark").stages
    for params in pretrainings:
        source = benchmark["pretrain_mae" if params.masking == "random" else "pretrain_i2p_mae"].params
        assert params.model_copy(update={"seed": source.seed}) == source
    assert evaluate.params.random_inits == 3


def test_base_stages_come_from_another_file_under_its_profile_and_cannot_be_redefined(toy):
    derived = toy.root / "derived.yaml"
    derived.write_text(f"base: {{pipeline: pipeline.yaml, profile: small, stages: [numbers]}}\n"
                       f"stages:\n  twice:\n    module: {toy.package}.total\n    inputs: [numbers]\n    params: {{scale: 2}}\n")
    pipeline = load_pipeline(derived, overrides=["twice.scale=3"])
    assert list(pipeline.stages) == ["numbers", "twice"]
    assert pipeline.stages["numbers"].params.count == 2 and pipeline.stages["twice"].params.scale == 3
    derived.write_text(derived.read_text().replace("twice:", "numbers:"))
    with pytest.raises(PipelineError, match="stage 'numbers' is both a base stage and defined here"):
        load_pipeline(derived)
    derived.write_text(derived.read_text().replace("stages: [numbers]", "stages: [missing]"))
    with pytest.raises(PipelineError, match="base stage 'missing' is not a stage of .*pipeline.yaml"):
        load_pipeline(derived)


def test_a_variant_is_its_stage_with_its_own_params_merged_over(toy):
    """`like:` (pipelines/i2p_mae_seeds.yaml's pretrainings of other seeds): the stage's module, inputs and final
    params (base profile, this file's profile and --set applied to the stage reach the variant too); its own
    inputs replace the stage's; profiles and --set reach it by its own name as well."""
    derived = toy.root / "derived.yaml"
    derived.write_text("base: {pipeline: pipeline.yaml, profile: small, stages: [numbers, total]}\n"
                       "stages:\n"
                       "  more_numbers: {like: numbers, params: {count: 7}}\n"
                       "  same_numbers: {like: numbers}\n"
                       "  total_more: {like: total, inputs: [more_numbers], params: {fail: false}}\n"
                       "profiles:\n  big: {total_more: {scale: 4}}\n  wide: {total: {scale: 5}}\n")
    pipeline = load_pipeline(derived, profile="big")
    assert list(pipeline.stages) == ["numbers", "total", "more_numbers", "same_numbers", "total_more"]
    numbers, more, same = (pipeline.stages[name] for name in ("numbers", "more_numbers", "same_numbers"))
    assert more.module is numbers.module and (numbers.params.count, more.params.count, same.params.count) == (2, 7, 2)
    total, total_more = pipeline.stages["total"], pipeline.stages["total_more"]
    assert total_more.module is total.module and total_more.inputs == ("more_numbers",)
    assert (total.params.scale, total_more.params.scale) == (1, 4)
    widened = load_pipeline(derived, profile="wide", overrides=["numbers.count=9"]).stages
    assert (widened["total_more"].params.scale, widened["same_numbers"].params.count) == (5, 9)
    assert widened["more_numbers"].params.count == 7  # its own params win over its stage's
    assert load_pipeline(derived, overrides=["more_numbers.count=8"]).stages["more_numbers"].params.count == 8


@pytest.mark.parametrize("entry, message", [
    ("{like: number, params: {count: 7}}", r"stage 'more_numbers' is like 'number': unknown stage 'number' \(did you mean 'numbers'\?\)"),
    ("{like: more_numbers}", "stage 'more_numbers' is like 'more_numbers': unknown stage"),
    ("{like: same_numbers}", r"is like 'same_numbers', itself a variant \(of 'numbers'\)"),
    ("{like: numbers, module: x}", "gives both like and module"),
])
def test_a_variant_of_no_stage_of_itself_or_of_a_variant_is_an_error(toy, entry, message):
    derived = toy.root / "derived.yaml"
    derived.write_text("base: {pipeline: pipeline.yaml, stages: [numbers]}\n"
                       f"stages:\n  more_numbers: {entry}\n  same_numbers: {{like: numbers}}\n")
    with pytest.raises(PipelineError, match=message):
        load_pipeline(derived)


def test_inputs_must_be_a_list_or_a_mapping_of_stage_names(toy):
    toy.pipeline.write_text(toy.pipeline.read_text().replace("inputs: [numbers]", "inputs: numbers"))
    with pytest.raises(PipelineError, match="inputs must be a list of stages or a mapping name: stage"):
        load_pipeline(toy.pipeline)


def test_a_stage_defined_twice_is_an_error_not_a_silent_override(toy):
    text = toy.pipeline.read_text().replace("profiles:", f"  numbers:\n    module: {toy.package}.numbers\nprofiles:")
    toy.pipeline.write_text(text)
    with pytest.raises(PipelineError, match=r"not valid YAML.*duplicate keys \['numbers'\]"):
        load_pipeline(toy.pipeline)


def test_a_merge_key_shares_params_its_own_keys_override_and_a_repeated_own_key_is_still_an_error(toy):
    text = toy.pipeline.read_text()  # total's params: {scale: 1}
    toy.pipeline.write_text(text.replace("params: {scale: 1}", "params:\n      <<: {scale: 6}"))
    assert load_pipeline(toy.pipeline).stages["total"].params.scale == 6
    toy.pipeline.write_text(text.replace("params: {scale: 1}", "params:\n      <<: {scale: 6}\n      scale: 3"))
    assert load_pipeline(toy.pipeline).stages["total"].params.scale == 3
    toy.pipeline.write_text(text.replace("params: {scale: 1}", "params:\n      <<: {scale: 6}\n      scale: 3\n      scale: 4"))
    with pytest.raises(PipelineError, match=r"not valid YAML.*duplicate keys \['scale'\]"):
        load_pipeline(toy.pipeline)

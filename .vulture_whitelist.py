# Names vulture reports as unused in core/, monailabel_app/ and slicer_extension/ that are used all the same:
# called by a framework (Slicer, MONAI Label, pydicom), read by callers of the public API, or kept for the tests
# and scripts, which vulture does not scan. tests/test_layout.py runs
#     vulture core monailabel_app slicer_extension .vulture_whitelist.py --min-confidence 60
# and expects no report: dead code is deleted, not listed here. Each entry says who uses the name.
# (Vulture only matches names; `_` stands for any object.)

# ---- Python protocols --------------------------------------------------------------------------------------
__getattr__  # voxcause/__init__.py: lazy attributes of the package (PEP 562)
_.intra_op_num_threads  # models.backends.OnnxModel: onnxruntime.SessionOptions read by onnxruntime
_.inter_op_num_threads  # models.backends.OnnxModel: onnxruntime.SessionOptions read by onnxruntime

# ---- public API: fields and helpers callers and the tests read ---------------------------------------------
hash  # batch.results.CaseResult.hash: the content hash a result was computed with (set by batch.execute)
worker_deaths  # batch.runner.BatchReport: local workers that died (tests/batch)
_.executed  # batch.runner.BatchReport.executed: cases computed in this run (tests/batch)
validate_summary  # explanation.validate_summary: checks a summary.json against its schema (tests/saliency)
numbers_checked  # report.guard.GuardResult: how much the guard checked (tests/report)
mentions_checked  # report.guard.GuardResult
_.class_index  # samples.generator.Patient.class_index: the sample's class (tests/samples, tests/counterfactual)
run_training  # samples.training.run_training: scripts/train_samples.py, scripts/train_nnunet_sample.py
_.predict_like_nnunet  # models.nnunet: nnUNetPredictor's own path, the reference of tests/models/test_nnunet.py

# ---- the test kit (voxcause.testing and test hooks), used by tests/ ----------------------------------------
hook_count  # saliency._hooks.hook_count: proves no hook stays attached (tests/saliency, tests/fusion)
png_size  # testing.files.png_size
causes  # testing.known_cause.KnownCase.causes
decoys  # testing.known_cause.KnownCase.decoys
single_thread  # testing.threads.single_thread: the tests' conftest fixtures

# ---- work in progress of others (certificate, causal engine): recheck when it lands ------------------------

# ---- pydicom: DICOM attributes set on a Dataset (io/dicom_series.py) ---------------------------------------
_.is_little_endian
_.is_implicit_VR
_.MediaStorageSOPClassUID
_.MediaStorageSOPInstanceUID
_.TransferSyntaxUID
_.file_meta
_.SpecificCharacterSet
_.SOPClassUID
_.SOPInstanceUID
_.ImageType
_.InstanceCreationDate
_.InstanceCreationTime
_.ContentDate
_.SeriesDate
_.StudyDate
_.ContentTime
_.SeriesTime
_.StudyTime
_.AccessionNumber
_.Modality
_.Manufacturer
_.ManufacturerModelName
_.ReferringPhysicianName
_.StudyDescription
_.SeriesDescription
_.ProtocolName
_.PatientName
_.PatientID
_.PatientBirthDate
_.PatientSex
_.BodyPartExamined
_.ScanningSequence
_.SequenceVariant
_.ScanOptions
_.MRAcquisitionType
_.EchoTrainLength
_.SliceThickness
_.SpacingBetweenSlices
_.SeriesInstanceUID
_.StudyID
_.SeriesNumber
_.InstanceNumber
_.ImageOrientationPatient
_.FrameOfReferenceUID
_.PositionReferenceIndicator
_.SliceLocation
_.SamplesPerPixel
_.PhotometricInterpretation
_.Columns
_.Rows
_.PixelSpacing
_.BitsAllocated
_.BitsStored
_.HighBit
_.PixelRepresentation
_.SmallestImagePixelValue
_.LargestImagePixelValue
_.VR
_.PixelData

# ---- highdicom: attributes set on a SegmentDescription (io/dicom_out.py), written to the file
_.RecommendedDisplayCIELabValue

# ---- MONAI Label: the app, its configs and task hooks, found and called by the server ----------------------
VoxcauseApp  # main.py: the app class MONAI Label loads
_.init_infers  # MONAILabelApp hooks
_.init_trainers
ExplainDea  # lib/configs/*: TaskConfig classes the app discovers by module
ExplainRex
ExplainSaliency
Probability  # lib/configs/probability.py: the probability task's TaskConfig
_.trainer  # TaskConfig.trainer
_.list_images  # Datastore.list_images (dicomweb.py)
label_id  # Datastore.save_label's signature
_.is_valid  # BasicInferTask hooks (infers/base.py)
_.pre_transforms
_.run_inferer
convert_to_batch  # BasicInferTask.run_inferer's signature
_.post_transforms
extension  # BasicInferTask.writer's signature
_.from_token  # lib/auth.py: MONAI Label's token check, swapped for the app's own (read by its endpoints)
_.middleware_stack  # lib/serving.py: Starlette rebuilds the middleware stack when it is None

# ---- 3D Slicer: the scripted module, its widget, test and parameter node, found and called by Slicer --------
VoxCause  # ScriptedLoadableModule
_.categories  # module metadata Slicer reads
_.dependencies
_.contributors
_.helpText
_.acknowledgementText
VoxCauseWidget  # ScriptedLoadableModuleWidget
_.cleanup  # widget hooks
_.enter
caller  # VTK observer callbacks' signature (caller, event)
VoxCauseTest  # ScriptedLoadableModuleTest
_.runTest
explanationSegmentation  # parameter node field, bound to the GUI
_.explanationSegmentation
_.toolTip  # Qt properties set on widgets
_.specialValueText
INTERNAL  # state.ExitCode.INTERNAL: names the CLI's exit code 1 (every code but 0 and 2 is a failure)
read_scene_mrb  # bundle.read_scene_mrb: opens the written .mrb as Slicer does (tests/slicer)
render_png  # render.render_png: Slicer's slice pipeline to PNG (tests/slicer)
